"""CLI, progress: what a person sees while a run goes on and when it ends: the tqdm bar (tqdm lives
here only), the printed summary, messages on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from ..report import (
    GOOD,
    STATUSES,
    ResultBlock,
    RowResult,
    Summary,
)

log = logging.getLogger("bulk_sync.cli")  # one logger for the command line, whichever part logs


def progress(
    args: argparse.Namespace, total: int | None = None
) -> tuple[Callable[[RowResult | ResultBlock | None], None], Callable[[str], None]]:
    """A tqdm bar on the terminal: rows done (read and sent: a row counts when it is decided),
    rows/s, and an ETA from the estimated row count; nothing when output is not a terminal.
    Also returns how to print a line to stderr without breaking the bar."""
    if args.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return (lambda r: None), (lambda line: print(line, file=sys.stderr))
    from tqdm import tqdm

    bar = tqdm(total=total, unit=" rows", desc="bulk-sync", dynamic_ncols=True, smoothing=0.1)
    bad = 0

    def update(result: RowResult | ResultBlock | None) -> None:
        nonlocal bad
        if result is None:
            bar.close()
            return
        if isinstance(result, ResultBlock):
            bar.update(len(result))  # blocks hold rows that are fine (valid, unchanged)
            return
        if result.status not in GOOD:
            bad += 1
            bar.set_postfix(not_synced=bad, refresh=False)
        bar.update(1)

    return update, (lambda line: tqdm.write(line, file=sys.stderr))


def _batches(s: Summary) -> str:
    """`; batches of 400 records, learned` (or `, fixed`): the size a run that sent batches ended with."""
    if not s.batches or not s.requests:
        return ""
    return f"; batches of {s.batches['size']} records, {'learned' if s.batches['learned'] else 'fixed'}"


def print_summary(args: argparse.Namespace, s: Summary, written: list[Path], dry: bool) -> None:
    if not args.quiet:
        verb = "checked" if dry else "processed"
        print(
            f"{verb} {s.rows} rows from {len(s.files)} file(s) in {s.duration:.1f}s "
            f"({s.rows_per_second:,.0f} rows/s"
            + (f"; {s.workers} worker process{'es' if s.workers > 1 else ''}" if s.workers else "")
            + ")"
            + (
                ""
                if dry
                else f", {s.requests} requests" + (f" ({s.throttled} answered 429)" if s.throttled else "")
            )
            + _batches(s)
        )
        for status in STATUSES:
            if s.counts.get(status):
                print(f"  {status:<10} {s.counts[status]:>9,}")
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
                "predicted effect of a run (per the state file): "
                + ", ".join(f"{n:,} {k}" for k, n in predicted.items())
                + ("" if removed is None else f", {removed:,} removed (--mirror)")
            )
    resend = s.counts.get("not_sent", 0) + s.counts.get("failed", 0)
    if resend and not dry:
        print(
            f"{resend:,} row(s) were not sent or failed; they need no fixing, only sending: run the same "
            f"command again (the state skips what SIRO acknowledged), or: bulk-sync retry {written[0]} "
            f"--mapping {args.mapping}"
        )
    print(f"report: {written[0]}")
    for extra in written[1:]:
        kind = "error file (fix and drop again)" if "-errors" in extra.stem else "report"
        print(f"{kind}: {extra}")


def say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, flush=True)


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
