"""Pipeline, run: one run: the reader thread beside the event loop, the dispatcher and its uploads,
back-pressure, signals (a first one drains, a second one stops), and what is left not_sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errorfile import Kept
from ..errors import AuthError, BulkSyncError, FatalError, Interrupted, OutputError, SourceError, StartError
from ..load import changed_files
from ..payload import Payload
from ..report import VALID, Summary
from ..settings import RunSettings
from ..state import StateStore, target_for

if TYPE_CHECKING:  # the HTTP stages are imported when a run sends (a dry run starts faster)
    from ..dispatch import Dispatcher, Item
    from ..upload import Outcome, Transport, Uploader

from .chunks import Producer
from .plan import Plan, log
from .results import (
    Ahead,
    Block,
    Done,
    Emit,
    Ordered,
    Stop,
    from_outcome,
    in_flight_lost,
    not_sent_result,
    result_of,
    settled,
)
from .sizes import learned_size, remember_size
from .stopping import halt_with, signals, stopped_hard

# a payload's startTime, for the state (the mirror's window): compact JSON, a top-level key; inside a
# JSON text its quotes would be escaped, so this matches only the key itself
_START = re.compile(rb'"startTime":"([^"]*)"')


def run(plan: Plan, settings: RunSettings, emit: Emit, **kwargs: Any) -> Summary:
    """Synchronous entry point: execute the plan on a fresh event loop (uvloop where installed).
    Nothing of the process is changed (the CLI, which owns its process, tunes it around the call:
    see ``bulk_sync.cli.process``)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(execute(plan, settings, emit, **kwargs))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows, or not installed: the standard loop works, a little slower
        return None
    return uvloop.new_event_loop


async def execute(
    plan: Plan,
    settings: RunSettings,
    emit: Emit,
    *,
    transport: Transport | None = None,
    preflight: bool = True,
    handle_signals: bool = True,
    grace_seconds: float = 30.0,
    on_payload: Callable[[Payload], None] | None = None,
    show: int = 0,
    kept: Kept | None = None,
    events: Callable[[str], None] = lambda message: None,
    held: Callable[[], str | None] = lambda: None,
    ahead: Callable[[int], None] = lambda rows: None,
) -> Summary:
    """Stream every row through the stages; emit one RowResult per row, in input order.
    ``on_payload``: called (in a dry run) with the first ``show`` valid payloads; ``kept``: where to
    remember the cells of invalid rows (for the error file); ``events``: notices a person should
    see at once (the run is stopping, and how to stop it harder); ``held``: the name of a signal
    the caller received before the run handled signals itself (it stops the run as it arrives)."""
    summary = Summary(
        files=[src.label for src, _ in plan.jobs],
        sources=[(str(src.path), src.sheet) for src, _ in plan.jobs],
    )
    summary.forecast.reps_checked = plan.reps_note
    summary.forecast.applies = plan.spec.resource == "engagements"
    if settings.dry_run and settings.state_path is not None and not settings.full:
        summary.effect = Counter()  # the predicted effect: new and changed rows, counted
        summary.state_read = str(settings.state_path)
    stop = Stop()
    if settings.dry_run:
        ordered = Ordered(emit, summary)

        def on_signal(signame: str) -> None:  # as a run that sends, without requests in flight
            if stop:
                events(f"{signame} again: stopping now")
                stop.hard = True
                return
            stop.reason = Interrupted(f"stopped by {signame}; rows not yet checked are marked not_sent")
            events(
                f"stopping ({signame}): the rest of the file is counted as not_sent; "
                "press Ctrl-C again (or send SIGTERM) to stop now"
            )

        with signals(on_signal, enabled=handle_signals, held=held):
            summary.workers = await _read_all(
                plan, settings, ordered, stop, None, kept, on_payload, show, ahead=ahead
            )
        ordered.flush_all()
        if stop.hard:
            ordered.put_last(stopped_hard(ordered.last, "check"))
        return _finished(summary, stop)
    sending = _Sending(plan, settings, emit, summary, stop, grace_seconds, events, kept)
    with signals(sending.on_signal, enabled=handle_signals, held=held):
        await sending.send(transport, preflight)
    return _finished(summary, stop)


def _finished(summary: Summary, stop: Stop) -> Summary:
    """The summary of a run that ended: why it stopped early, if it did, and when it ended."""
    if stop.reason is not None:
        summary.aborted = str(stop.reason)
        summary.aborted_code = stop.reason.exit_code
        summary.token_refused = isinstance(stop.reason, AuthError)
    summary.finished = time.monotonic()
    return summary


class _Sending:
    """A run that sends: what the reader, the dispatcher's callbacks and the signal handlers share
    (the stop, the results in order, the acknowledgements on their way to the state file)."""

    def __init__(
        self,
        plan: Plan,
        settings: RunSettings,
        emit: Emit,
        summary: Summary,
        stop: Stop,
        grace_seconds: float,
        events: Callable[[str], None],
        kept: Kept | None,
    ) -> None:
        self.plan, self.settings, self.stop, self.kept = plan, settings, stop, kept
        self.grace_seconds, self.events = grace_seconds, events
        self.loop = asyncio.get_running_loop()
        self.tasks: list[asyncio.Task[Any]] = []
        self.checking: list[asyncio.Task[None]] = []  # the pre-flight, while it runs
        self.summary = summary
        self.ordered = Ordered(emit, summary, self.broken)
        self.store = StateStore(settings.state_path, target_for(settings)) if settings.state_path else None
        self.acked: list[tuple[str, bytes, str | None, bytes | None, str]] = []
        self.flush_scheduled = False
        self.up: Uploader | None = None  # once open
        self.dispatcher: Dispatcher | None = None

    # ----------------------------------------------------------------- stopping

    def halt(self, reason: BulkSyncError) -> None:
        if not self.stop:
            log.error("stopping the run: %s", reason)
            self.stop.reason = reason
            if self.up is not None:
                self.up.stopping = True
            for task in self.checking:  # a pre-flight waiting on the network is not waited for
                task.cancel()
            self.loop.call_later(self.grace_seconds, self.hard_stop)

    def hard_stop(self) -> None:
        self.stop.hard = True
        for t in self.tasks:
            t.cancel()

    def on_signal(self, signame: str) -> None:
        if self.stop:
            self.events(f"{signame} again: stopping now; requests in flight are reported not_sent")
            self.hard_stop()
            return
        self.halt(Interrupted(f"stopped by {signame}; rows not yet sent are marked not_sent"))
        in_flight = self.dispatcher.in_flight if self.dispatcher is not None else 0
        self.events(
            f"stopping ({signame}): {in_flight} request(s) in flight are finishing (up to "
            f"{self.grace_seconds:.0f} s), the rest of the file is counted as not_sent; "
            "press Ctrl-C again (or send SIGTERM) to stop now"
        )

    def stopping(self) -> bool:
        """Whether the run is stopping; asked before each request: a file that changed since it
        was opened stops the run here, before more of it is sent."""
        if not self.stop and (changed := changed_files(src for src, _ in self.plan.jobs)) is not None:
            self.halt(changed)
        return bool(self.stop)

    def broken(self, exc: OSError) -> None:
        self.halt(
            OutputError(f"{self.summary.report_incomplete}; rows SIRO acknowledged are in the state file")
        )

    # ----------------------------------------------------------------- answers -> state file

    def done(self, item: Item, outcome: Outcome) -> None:
        seq, rec, digest, source = item.tag
        if outcome.status == "synced" and self.store is not None:
            start = _START.search(item.payload.raw)
            when = start.group(1).decode() if start else ""
            self.acked.append((item.payload.external_id, digest, outcome.siro_id, source, when))
        self.ordered.put(seq, from_outcome(rec, outcome))

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.acked and self.store is not None:
            try:
                self.store.record(self.acked)
            except BulkSyncError as exc:  # the state file cannot be written (full disk, damage)
                self.halt(OutputError(str(exc)))
            self.acked.clear()

    def delivered(self) -> None:
        """After a request: its acknowledgements go to the state file in one transaction, at the end
        of this turn of the event loop, together with those of every other request answered in it."""
        if self.acked and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    # ----------------------------------------------------------------- the run

    async def send(self, transport: Transport | None, preflight: bool) -> None:
        from ..dispatch import Dispatcher
        from ..upload import Uploader

        settings = self.settings
        if settings.batch and settings.batch_auto:  # start where the last run to this SIRO ended
            where = settings.identity or settings.base_url
            start = learned_size(settings.state_path, where) or settings.batch_size
            self.settings = settings.model_copy(update={"batch_size": min(start, settings.max_batch_size)})
        async with Uploader(self.settings, transport=transport) as up:
            self.up = up
            if preflight and not self.stop:  # (stopped by a signal before the run began: no call)
                await self._preflight(up)
            ordered, stop = self.ordered, self.stop
            self.dispatcher = dispatcher = Dispatcher(
                up,
                self.settings,
                on_done=self.done,
                on_delivered=self.delivered,
                on_abandoned=lambda item: ordered.put(item.tag[0], not_sent_result(item.tag[1], stop)),
                on_lost=lambda item: ordered.put(item.tag[0], in_flight_lost(item.tag[1])),
                on_fatal=self.halt,
                stopping=self.stopping,
            )
            self.tasks.extend(dispatcher.workers)
            await self._read(dispatcher)
            dispatcher.close()
            await dispatcher.join()
            self._wind_up(dispatcher)
            self.summary.requests = up.requests_sent
            self.summary.throttled = up.pacer.throttled
            self._batches(up)

    def _batches(self, up: Uploader) -> None:
        """The batch size the run ended with, in the summary; learned: kept for the next run."""
        if not self.settings.batch:
            return
        sizer = up.sizer
        self.summary.batches = {
            "size": sizer.learned or sizer.size,
            "learned": sizer.auto,
            "start": self.settings.batch_size,  # what it started at (the last run's, or --batch-size)
        }
        if sizer.learned is not None:
            where = self.settings.identity or self.settings.base_url
            remember_size(self.settings.state_path, where, sizer.learned)

    async def _preflight(self, up: Uploader) -> None:
        check = self.loop.create_task(up.check_identity())
        self.checking.append(check)
        try:
            await check
        except StartError as exc:  # SIRO unreachable, or the token refused: nothing sent
            self.halt(exc)
        except asyncio.CancelledError:
            if not self.stop:
                raise
        self.checking.clear()

    async def _read(self, dispatcher: Dispatcher) -> None:
        reader = self.loop.create_task(
            _read_all(
                self.plan, self.settings, self.ordered, self.stop, dispatcher, kept=self.kept, halt=self.halt
            )
        )
        self.tasks.append(reader)
        try:
            await reader
        except asyncio.CancelledError:
            pass
        except SourceError as exc:  # the file broke part-way (rows before it were sent): stop, report
            self.halt(
                FatalError(
                    f"reading stopped part-way: {exc}; the rows after that point are not in the report"
                )
            )
        except BulkSyncError as exc:  # the state file failed while reading (damaged mid-run)
            self.halt(OutputError(str(exc)))

    def _wind_up(self, dispatcher: Dispatcher) -> None:
        for item in dispatcher.leftovers():  # left behind by a hard stop
            self.ordered.put(item.tag[0], not_sent_result(item.tag[1], self.stop))
        self.flush()
        if self.store is not None:
            self.store.close()
        self.ordered.flush_all()
        if self.stop.hard:
            self.ordered.put_last(stopped_hard(self.ordered.last))


async def _read_all(
    plan: Plan,
    settings: RunSettings,
    ordered: Ordered,
    stop: Stop,
    dispatcher: Dispatcher | None,
    kept: Kept | None = None,
    on_payload: Callable[[Payload], None] | None = None,
    show: int = 0,
    halt: Callable[[BulkSyncError], None] | None = None,
    ahead: Callable[[int], None] = lambda rows: None,
) -> int:
    """Feed every row to the dispatcher (or, in a dry run, straight to the results); return how
    many worker processes mapped the chunks (a large dry run: see :mod:`.workers`).

    Reading, mapping and validating run in a thread (:class:`Producer`) so that the event loop
    stays free to answer responses while a chunk is parsed: a loop blocked for the few hundred
    milliseconds a chunk takes would stall every connection at once.
    """
    if dispatcher is not None:  # a dry run never imports the HTTP stages
        from ..dispatch import Item

    producer = Producer(plan, settings.reading, stop, kept=kept, show=show if on_payload is not None else 0)
    try:
        while (rows := await producer.next_rows()) is not None:
            if not stop and (changed := changed_files(src for src, _ in plan.jobs)) is not None:
                halt_with(stop, changed, halt)  # these rows and the rest are not sent: not_sent
            for row in rows:
                if stop.hard:
                    return producer.workers  # a second signal: write what we have, now
                if isinstance(row, Block):
                    ordered.put(row.seq, row.block)
                    continue
                if isinstance(row, Done):  # settled by a dry run's worker process
                    ordered.put(row.seq, row.result)
                    continue
                if isinstance(row, Ahead):  # progress only: rows a worker checked ahead
                    ahead(row.rows)
                    continue
                seq, rec, built = row.seq, row.rec, row.built
                if row.predicted_unchanged and on_payload is not None and isinstance(built, Payload):
                    on_payload(built)  # --show with a state: shown, and reported unchanged
                final = settled(row, stop)
                if final is not None:
                    ordered.put(seq, final)
                    continue
                assert isinstance(built, Payload)  # what settled leaves: a payload to send
                if dispatcher is None:
                    if on_payload is not None:
                        on_payload(built)
                    ordered.put(seq, result_of(rec, VALID, message=row.note or None))
                else:  # the dispatcher owns it from here, even if a hard stop cancels the wait for
                    # room: its result comes from there (sent, lost in flight, or a leftover not_sent)
                    await dispatcher.submit(Item(built, (seq, rec, row.digest, row.source)))
            if dispatcher is not None and ordered.waiting:
                dispatcher.flush()  # results wait behind a partial batch: let it go
            await ordered.backpressure()
    finally:
        producer.close()
    return producer.workers
