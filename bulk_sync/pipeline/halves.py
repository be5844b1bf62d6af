"""Pipeline, halves: a dry run's id pass over a large CSV in two halves at once. A helper process,
forked with the plan, reads the second half while this one reads the first, so the pass that must
end before the first row is mapped takes about half as long on a machine with a second core (1.4 s
instead of 2.4 s for 1,000,000 rows). A run that sends is bound by SIRO's quota and does not.

Where the second half starts: just past a line break near the middle with an even number of
quotes before it (``Source.halfway``). A quote inside an unquoted cell can make that count lie, and
the line break be inside a quoted cell; pandas' parser then ends the first half inside a quoted
cell, which it refuses. So the halves are used only when the first half reads to its end without
an error; otherwise (and when the helper fails) nothing of them is kept and the file is read
whole, as in one process: the rows, their numbers and the number evidence are the same either way.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import mapping
from ..load import Source, Span
from .idtable import IdTable, RowsFile, add_ids, rows_of

log = logging.getLogger("bulk_sync.pipeline")


def read_in_halves(
    src: Source,
    bound: mapping.BoundMapping,
    columns: list[str],
    evidence: mapping.NumberEvidence,
    job: int,
    table: IdTable,
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[int, int] | None:
    """Add the ids of ``src`` (job ``job``) to ``table`` and feed ``evidence`` from its ``columns`` as
    one pass would, reading its halves at once. Returns where the second half starts (its byte offset,
    its first record's number); None, nothing added, when not split (or stopping): read it whole."""
    if (at := src.halfway()) is None:
        return None
    ctx = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):  # the helper must not write out what this one buffered
        stream.flush()
    with tempfile.TemporaryDirectory(prefix="bulk_sync-ids-") as folder:
        theirs_file = Path(folder) / "second-half.u64"
        answers, theirs = ctx.Pipe(duplex=False)
        helper = ctx.Process(
            target=_second_half,
            args=(src, bound, columns, Span(at, src.size, 0), job, theirs_file, theirs),
            daemon=True,
            name="bulk_sync-ids",
        )
        helper.start()
        theirs.close()
        held = IdTable()
        try:
            first = Span(0, at, src.header_row + 1)
            try:
                for chunk in src.chunks(columns=columns, span=first):
                    if stopping():  # the run is stopping: the caller ends the pass
                        return None
                    if evidence.settling:
                        evidence.add(chunk)
                    add_ids(held, bound, chunk, None, job)
            except Exception as exc:  # a quoted cell open at the middle, or a broken file: read it whole
                log.info("%s: ids read in one pass (the first half did not end a record: %s)", src.label, exc)
                return None
            found = _answer(answers)
            if found is None:
                log.info("%s: ids read in one pass (the helper process failed)", src.label)
                return None
            shift = first.first + first.records  # the number of the second half's first record
            for target, (mark, row, cell) in found.items():
                evidence.found.setdefault(target, (mark, row + shift, cell))  # the earliest wins
            for part in held.parts():  # within an id, the first half's rows before the second's
                table.add(part)
            for rows in rows_of(theirs_file, shift):
                table.add(rows)
            log.info("%s: ids read in two halves at once (the second from byte %d)", src.label, at)
            return at, shift
        finally:
            held.close()
            if helper.is_alive():
                helper.kill()
            helper.join()
            answers.close()


def _answer(answers: Connection) -> dict[str, tuple[str, int, str]] | None:
    """The number evidence the helper found (its row numbers from 0), or None when it failed."""
    try:
        answer = answers.recv()
    except (EOFError, OSError):  # it ended without a word (killed, out of memory)
        return None
    if answer[0] != "ok":
        return None
    found: dict[str, tuple[str, int, str]] = answer[1]
    return found


def _second_half(
    src: Source,
    bound: mapping.BoundMapping,
    columns: list[str],
    span: Span,
    job: int,
    out: Path,
    answers: Connection,
) -> None:
    """The helper process: the second half's ids to ``out`` (row numbers from 0), then its number
    evidence on ``answers``; a failure is answered too (the caller then reads the file whole)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; it ends this process
    answer: Any
    try:
        evidence = mapping.NumberEvidence(bound)
        with out.open("wb") as fh:
            rows = RowsFile(fh)
            for chunk in src.chunks(columns=columns, span=span):
                if evidence.settling:
                    evidence.add(chunk)
                add_ids(rows, bound, chunk, None, job)
        answer = ("ok", evidence.found)
    except Exception as exc:
        answer = ("failed", repr(exc)[:300])
    with contextlib.suppress(OSError):
        answers.send(answer)
