"""Pipeline, run: one run: the reader thread beside the event loop, the dispatcher and its uploads,
back-pressure, signals (a first one drains, a second one stops), and what is left not_sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errorfile import Kept
from ..errors import BulkSyncError, FatalError, Interrupted, OutputError, SourceError, StartError
from ..payload import Payload
from ..report import (
    NOT_SENT,
    SKIPPED,
    SUPERSEDED,
    UNCHANGED,
    VALID,
    RowResult,
    Summary,
)
from ..settings import RunSettings
from ..state import StateStore, target_of

if TYPE_CHECKING:  # the HTTP stages are imported when a run sends (a dry run starts faster)
    from ..dispatch import Dispatcher, Item
    from ..upload import Outcome, Transport

from .chunks import UNCHANGED_NOTE, Producer
from .plan import Plan, log
from .results import (
    Block,
    Emit,
    Ordered,
    Skipped,
    Stop,
    from_outcome,
    in_flight_lost,
    invalid_result,
    not_sent_result,
    result_of,
)


def run(plan: Plan, settings: RunSettings, emit: Emit, **kwargs: Any) -> Summary:
    """Synchronous entry point: execute the plan on a fresh event loop (uvloop where installed)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # the reader thread must not keep the event loop waiting for the GIL
    gc.freeze()  # what is loaded by now (modules, the mapping) lives on: keep the cyclic GC's passes short
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(execute(plan, settings, emit, **kwargs))
    finally:
        sys.setswitchinterval(old)


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
    kept: Kept | None = None,
    events: Callable[[str], None] = lambda message: None,
) -> Summary:
    """Stream every row through the stages; emit one RowResult per row, in input order.
    ``kept``: where to remember the cells of invalid rows (for the error file); ``events``: notices
    a person should see at once (the run is stopping, and how to stop it harder)."""
    summary = Summary(files=[src.label for src, _ in plan.jobs])
    stop = Stop()
    if settings.dry_run:
        ordered = Ordered(emit, summary)
        await _read_all(plan, settings, ordered, stop, None, on_payload, kept)
        summary.finished = time.monotonic()
        return summary
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    checking: list[asyncio.Task[None]] = []  # the pre-flight, while it runs

    def halt(reason: BulkSyncError) -> None:
        if not stop:
            log.error("stopping the run: %s", reason)
            stop.reason = reason
            up.stopping = True
            for task in checking:  # a pre-flight waiting on the network is not waited for
                task.cancel()
            loop.call_later(grace_seconds, hard_stop)

    def hard_stop() -> None:
        stop.hard = True
        for t in tasks:
            t.cancel()

    def on_signal(signame: str) -> None:
        if stop:
            events(f"{signame} again: stopping now; requests in flight are reported not_sent")
            hard_stop()
            return
        halt(Interrupted(f"stopped by {signame}; rows not yet sent are marked not_sent"))
        in_flight = dispatcher.in_flight if dispatcher is not None else 0
        events(
            f"stopping ({signame}): {in_flight} request(s) in flight are finishing (up to "
            f"{grace_seconds:.0f} s), the rest of the file is counted as not_sent; "
            "press Ctrl-C again (or send SIGTERM) to stop now"
        )

    def broken(exc: OSError) -> None:
        halt(OutputError(f"{summary.report_incomplete}; rows SIRO acknowledged are in the state file"))

    ordered = Ordered(emit, summary, broken)
    store = StateStore(settings.state_path, target_of(settings.base_url)) if settings.state_path else None
    acked: list[tuple[str, bytes, str | None, bytes | None]] = []

    def done(item: Item, outcome: Outcome) -> None:
        seq, rec, digest, source = item.tag
        if outcome.status == "synced" and store is not None:
            acked.append((item.payload.external_id, digest, outcome.siro_id, source))
        ordered.put(seq, from_outcome(rec, outcome))

    flush_scheduled = False

    def flush() -> None:
        nonlocal flush_scheduled
        flush_scheduled = False
        if acked and store is not None:
            try:
                store.record(acked)
            except BulkSyncError as exc:  # the state file cannot be written (full disk, damage)
                halt(OutputError(str(exc)))
            acked.clear()

    def delivered() -> None:
        """After a request: its acknowledgements go to the state file in one transaction, at the end
        of this turn of the event loop, together with those of every other request answered in it."""
        nonlocal flush_scheduled
        if acked and not flush_scheduled:
            flush_scheduled = True
            loop.call_soon(flush)

    dispatcher: Dispatcher | None = None
    with _signals(on_signal, enabled=handle_signals):
        from ..dispatch import Dispatcher
        from ..upload import Uploader

        async with Uploader(settings, transport=transport) as up:
            if preflight:
                check = loop.create_task(up.check_identity())
                checking.append(check)
                try:
                    await check
                except StartError as exc:  # SIRO unreachable, or the token refused: nothing sent
                    halt(exc)
                except asyncio.CancelledError:
                    if not stop:
                        raise
                checking.clear()
            dispatcher = Dispatcher(
                up,
                settings,
                on_done=done,
                on_delivered=delivered,
                on_abandoned=lambda item: ordered.put(item.tag[0], not_sent_result(item.tag[1], stop)),
                on_lost=lambda item: ordered.put(item.tag[0], in_flight_lost(item.tag[1])),
                on_fatal=halt,
                stopping=lambda: bool(stop),
            )
            tasks.extend(dispatcher.workers)
            reader = loop.create_task(_read_all(plan, settings, ordered, stop, dispatcher, kept=kept))
            tasks.append(reader)
            try:
                await reader
            except asyncio.CancelledError:
                pass
            except SourceError as exc:  # the file broke part-way (rows before it were sent): stop, report
                halt(
                    FatalError(
                        f"reading stopped part-way: {exc}; the rows after that point are not in the report"
                    )
                )
            except BulkSyncError as exc:  # the state file failed while reading (damaged mid-run)
                halt(OutputError(str(exc)))
            dispatcher.close()
            await dispatcher.join()
            for item in dispatcher.leftovers():  # left behind by a hard stop
                ordered.put(item.tag[0], not_sent_result(item.tag[1], stop))
            flush()
            if store is not None:
                store.close()
            ordered.flush_all()
            if stop.hard:
                ordered.put_last(_stopped_hard(ordered.last))
            summary.requests = up.requests_sent
            summary.throttled = up.pacer.throttled
    if stop.reason is not None:
        summary.aborted = str(stop.reason)
        summary.aborted_code = stop.reason.exit_code
    summary.finished = time.monotonic()
    return summary


def _stopped_hard(last: tuple[str, str | None, int] | None) -> RowResult:
    """The report's last line after a second signal: where it stops (the rows after were not read)."""
    file, sheet, row = last if last is not None else ("", None, 0)
    return RowResult(
        file,
        sheet,
        row + 1,
        None,
        NOT_SENT,
        error_type="interrupted",
        message=(
            f"the run was stopped hard here: the report stops after row {row}; this row and every "
            "row after it (and any later file) were not read: run the same command again to send them"
        ),
    )


async def _read_all(
    plan: Plan,
    settings: RunSettings,
    ordered: Ordered,
    stop: Stop,
    dispatcher: Dispatcher | None,
    on_payload: Callable[[Payload], None] | None = None,
    kept: Kept | None = None,
) -> None:
    """Feed every row to the dispatcher (or, in a dry run, straight to the results).

    Reading, mapping and validating run in a thread (:class:`Producer`) so that the event loop
    stays free to answer responses while a chunk is parsed: a loop blocked for the few hundred
    milliseconds a chunk takes would stall every connection at once.
    """
    if dispatcher is not None:  # a dry run never imports the HTTP stages
        from ..dispatch import Item

    producer = Producer(plan, settings, stop, per_row=on_payload is not None, kept=kept)
    try:
        while (rows := await producer.next_rows()) is not None:
            for row in rows:
                if stop.hard:
                    return  # a second signal: write what we have, now
                if isinstance(row, Block):
                    ordered.put(row.seq, row.block)
                    continue
                seq, rec, built, digest, source, unchanged = row
                if isinstance(rec, Skipped):
                    ordered.put(seq, result_of(rec, SKIPPED, error_type=rec.rule, message=rec.reason))
                elif rec.skip is not None and rec.skip.startswith("\x00"):  # a later row has this id
                    ordered.put(seq, result_of(rec, SUPERSEDED, message=rec.skip[1:]))
                elif rec.skip is not None:
                    ordered.put(seq, result_of(rec, SKIPPED, error_type="filter", message=rec.skip))
                elif isinstance(built, list):  # found invalid: it stays invalid, stop or not
                    ordered.put(seq, invalid_result(rec, built))
                elif stop or built is None:
                    ordered.put(seq, not_sent_result(rec, stop))
                elif unchanged:
                    ordered.put(seq, result_of(rec, UNCHANGED, message=UNCHANGED_NOTE))
                elif dispatcher is None:
                    if on_payload is not None:
                        on_payload(built)
                    ordered.put(seq, result_of(rec, VALID))
                else:
                    try:
                        await dispatcher.submit(Item(built, (seq, rec, digest, source)))
                    except asyncio.CancelledError:
                        ordered.put(seq, not_sent_result(rec, stop))
                        raise
            if dispatcher is not None and ordered.waiting:
                dispatcher.flush()  # results wait behind a partial batch: let it go
            await ordered.backpressure()
    finally:
        producer.close()


@contextlib.contextmanager
def _signals(handler: Callable[[str], None], *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
