"""Pipeline: wires load -> map -> build payload -> upload for one run.

Two phases, so that nothing is sent when the run cannot start:

* :func:`prepare` reads the mapping, opens every file, reads their headers and binds the mapping
  to them; any problem raises a :class:`~bulk_sync.errors.ConfigError` before a byte is sent.
* :func:`execute` streams the rows through the stages and emits exactly one
  :class:`~bulk_sync.report.RowResult` per input row, **in input order**, through a callback.

Concurrency: one reader (this coroutine) feeds a bounded queue; ``concurrency`` workers take
records from it. Two records with the same externalId are never in flight together.
Stopping: a FatalError (token refused) or a signal stops dispatching; in-flight requests finish
(a second signal cancels them); every row not sent is still reported, as ``not_sent``.

The parts, one way (each imports only those listed before it):

    cores       how many processes may work beside this one (the workers asked, the cores)
    memory      freed memory handed back to the system as a long run goes
    reps        is a row's rep a SIRO user (RepCheck, from SIRO's users fetched once a run)
    plan        everything checked before sending: prepare, prepare_retry, the state lock
    idtable     the id pass's table of id digests, in memory and then in parts on disk
    halves      the id pass over a large CSV in two halves at once (a forked helper reads one)
    superseded  the id pass: which rows a later row of the same externalId supersedes
    warnings    rules about a valid row that do not stop it (matching, end before start, the rep)
    results     one RowResult per row, in input order (Ordered), and the stop flag
    entries     a chunk's results in order: runs of valid rows, runs of unchanged rows (ChunkRun)
    records     rows one by one as MappedRecords (merged by group_by)
    known       what the state file holds for a chunk's rows
    handoff     the queue from the reader thread to the event loop, bounded in bytes
    valid       a chunk's valid rows: blocks in a dry run (the predicted effect), or to send
    work        one chunk's work: map, check, compare with the state, route each row (ChunkWork)
    parts       a large CSV's dry run in two parts at once (the worker reads the second)
    workers     a large dry run's chunks mapped in forked worker processes, results in order
    chunks      the reader thread: read the chunks, have them worked, hand them on (Producer)
    stopping    how a run is asked to stop: signals in its event loop, a reason, a hard stop
    sizes       the batch size learned per SIRO (its base URL), kept in the state file
    run         the async run: reader thread, dispatcher, signals, the end of the run
    drift       a job's files against its last good run (the drift hold's rules)
    mirror      the mirror's window, guards and plan
    finish      the outputs after a run: error files, the outcome as data (summary JSON), webhook
"""

from __future__ import annotations

from .cores import spare_core
from .plan import Plan, check_mapping, prepare, prepare_retry, state_lock
from .reps import RepCheck
from .run import execute, run
from .superseded import scan_columns

__all__ = [
    "Plan",
    "RepCheck",
    "check_mapping",
    "execute",
    "prepare",
    "prepare_retry",
    "run",
    "scan_columns",
    "spare_core",
    "state_lock",
]
