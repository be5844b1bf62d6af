"""CLI, progress: what a person sees while a run goes on and when it ends: the tqdm bar (tqdm lives
here only), the printed summary, messages on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..report import (
    GOOD,
    STATUSES,
    TAKEN,
    ResultBlock,
    RowResult,
    Summary,
)

log = logging.getLogger("bulk_sync.cli")  # one logger for the command line, whichever part logs


def progress(
    args: argparse.Namespace, total: int | None = None
) -> tuple[Callable[[RowResult | ResultBlock | int | None], None], Callable[[str], None]]:
    """What a person sees while a run goes on. On a terminal: a tqdm bar (rows done, rows/s, an ETA
    from the estimated row count). Elsewhere (cron, systemd, a log file): a heartbeat line every
    --heartbeat seconds on stderr (not with --quiet) and in the log. Returns the callback that takes
    each result (None at the end; a number: rows checked ahead of their results, or taken back when
    they come) and how to print a line to stderr without breaking the bar."""
    total = None if total is None else int(total)
    if not args.quiet and sys.stdout.isatty() and sys.stderr.isatty():
        return _bar(total)
    every = getattr(args, "heartbeat", 0) or 0
    if not every:
        return (lambda r: None), _stderr
    dry = args.command == "validate" or getattr(args, "dry_run", False)
    beat = Heartbeat(total, every, None if args.quiet else _stderr, "valid" if dry else "synced")
    return beat.update, _stderr


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _bar(
    total: int | None,
) -> tuple[Callable[[RowResult | ResultBlock | int | None], None], Callable[[str], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit=" rows", desc="bulk-sync", dynamic_ncols=True, smoothing=0.1)
    bad = 0

    def update(result: RowResult | ResultBlock | int | None) -> None:
        nonlocal bad
        if result is None:
            bar.close()
            return
        if isinstance(result, int):  # a dry run's second part, checked ahead of its results
            bar.update(result)
            return
        if isinstance(result, ResultBlock):
            bar.update(len(result))  # blocks hold rows that are fine (valid, unchanged)
            return
        if result.status not in GOOD:
            bad += 1
            bar.set_postfix(not_synced=bad, refresh=False)
        bar.update(1)

    return update, (lambda line: tqdm.write(line, file=sys.stderr))


class Heartbeat:
    """A line every ``every`` seconds while a run goes on, from a thread of its own (so a run that
    waits, on SIRO's quota or on retries, still says it is alive): rows done (of the estimate),
    rows/s, an ETA, and how many synced so far. To ``say`` (stderr) and the CLI's log."""

    def __init__(
        self, total: int | None, every: float, say: Callable[[str], None] | None, taken: str = "synced"
    ) -> None:
        self.total, self.every, self.say, self.taken = total, every, say, taken
        self.done = self.synced = self.bad = 0
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="bulk-sync-heartbeat", daemon=True)
        self._thread.start()

    def update(self, result: RowResult | ResultBlock | int | None) -> None:
        if result is None:
            self._stop.set()
            return
        if isinstance(result, int):  # a dry run's second part, checked ahead of its results
            self.done += result
            return
        n = len(result) if isinstance(result, ResultBlock) else 1
        self.done += n
        if result.status in TAKEN:
            self.synced += n
        elif result.status not in GOOD:
            self.bad += n

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        done = f"{self.done:,} rows"
        eta = ""
        if self.total:
            done += f" of ~{self.total:,} ({min(self.done / self.total, 1.0):.0%})"
            if rate > 0 and self.done < self.total:
                eta = f", ETA {_duration((self.total - self.done) / rate)}"
        return (
            f"bulk-sync: {done} in {_duration(elapsed)}, {rate:,.0f} rows/s{eta}; "
            f"{self.synced:,} {self.taken} so far" + (f", {self.bad:,} not synced" if self.bad else "")
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            text = self.line()
            log.info("%s", text)
            if self.say is not None:
                self.say(text)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _batches(s: Summary) -> str:
    """`; batches of 400 records, learned` when the size grew or shrank (`--batch-size auto`), `; batches
    of up to 100 records (auto)` when it stayed, `, fixed` with a number: the size a run ended with."""
    if not s.batches or not s.requests:
        return ""
    size = s.batches["size"]
    if not s.batches["learned"]:
        return f"; batches of {size} records, fixed"
    if size == s.batches.get("start", size):
        return f"; batches of up to {size} records (auto)"
    return f"; batches of {size} records, learned"


def print_summary(args: argparse.Namespace, s: Summary, written: list[Path], dry: bool) -> None:
    if not args.quiet:
        verb = "checked" if dry else "processed"
        print(
            f"{verb} {plural(s.rows, 'row')} from {read_from(s.sources)} in {s.duration:.1f}s "
            f"({s.rows_per_second:,.0f} rows/s"
            + (f"; {s.workers} worker process{'es' if s.workers > 1 else ''}" if s.workers else "")
            + ")"
            + (
                ""
                if dry
                else f", {plural(s.requests, 'request')}"
                + (f" ({s.throttled} answered 429)" if s.throttled else "")
            )
            + _batches(s)
        )
        for status in STATUSES:
            if s.counts.get(status):
                label = paint(f"{status:<10}", _STATUS_COLOUR.get(status), sys.stdout)
                print(f"  {label} {s.counts[status]:>9,}")
        if s.error_types:
            print("  by error type: " + ", ".join(f"{k} {v}" for k, v in s.error_types.most_common()))
        if s.warnings:
            print("  warnings: " + ", ".join(f"{k} {v}" for k, v in s.warnings.most_common()))
        for line in s.forecast.lines():
            print(line)
        predicted = s.predicted()
        if predicted is not None:
            removed = s.mirror.get("would_remove") if s.mirror else None
            print(
                f"predicted effect of a run (per the state file {s.state_read}): "
                + ", ".join(f"{n:,} {k}" for k, n in predicted.items())
                + ("" if removed is None else f", {removed:,} removed (--mirror)")
            )
    resend = s.counts.get("not_sent", 0) + s.counts.get("failed", 0)
    if resend and not dry:
        print(_resend_hint(args, s, resend, written[0]))
    print(f"report: {written[0]}")
    for extra in written[1:]:
        kind = "error file (fix and drop again)" if "-errors" in extra.stem else "report"
        print(f"{kind}: {extra}")


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def read_from(sources: list[tuple[str, str | None]]) -> str:
    """What a run read, in the words a person uses: ``1 file``, ``3 sheets of 1 workbook``, ``2 sheets
    of 1 workbook and 1 file`` (a workbook's sheets are sheets, not files)."""
    sheets = [path for path, sheet in sources if sheet is not None]
    files = [path for path, sheet in sources if sheet is None]
    parts = []
    if sheets:
        parts.append(f"{plural(len(sheets), 'sheet')} of {plural(len(set(sheets)), 'workbook')}")
    if files or not sheets:
        parts.append(plural(len(files), "file"))
    return " and ".join(parts)


def _resend_hint(args: argparse.Namespace, s: Summary, resend: int, report: Path) -> str:
    """What to do about the rows that were not sent or failed: send them again, unless the token
    was refused (then a rerun cannot help); the same command again only when a state skips what
    SIRO acknowledged."""
    rows = f"{plural(resend, 'row')} {'was' if resend == 1 else 'were'} not sent or failed"
    need = "it needs" if resend == 1 else "they need"
    if s.token_refused:
        return f"{rows}: SIRO refused the token; fix it (see above), then run the same command again"
    retry = f"bulk-sync retry {report} --mapping {args.mapping}"
    if getattr(args, "no_state", False) or (getattr(args, "sandbox", False) and not args.state):
        return (
            f"{rows}; {need} no fixing, only sending: {retry} (this run kept no state: the same "
            "command would send every row again)"
        )
    return (
        f"{rows}; {need} no fixing, only sending: run the same command again (the state skips "
        f"what SIRO acknowledged), or: {retry}"
    )


def say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, flush=True)


def err(message: str) -> None:
    if message.startswith("error: "):
        message = paint("error:", "red", sys.stderr) + message[len("error:") :]
    elif message.startswith("warning: "):
        message = paint("warning:", "yellow", sys.stderr) + message[len("warning:") :]
    print(message, file=sys.stderr, flush=True)


_CODES = {"red": "31", "green": "32", "yellow": "33"}
_STATUS_COLOUR = {
    "synced": "green",
    "valid": "green",
    "invalid": "red",
    "rejected": "red",
    "failed": "red",
    "not_sent": "yellow",
}


def colour_on(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str | None, stream: TextIO) -> str:
    if colour is None or not colour_on(stream):
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"
