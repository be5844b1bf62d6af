"""Review, preview: the dry run of an uploaded file, bounded and cancellable. It runs in a child
process (``python -m bulk_sync.review.preview FILE MAPPING``) with a time limit, a memory limit
(RLIMIT_AS) and a cap on rows; a workbook whose parts unpack to more than a cap, or at a ratio no
spreadsheet has, is refused before any of it is read. Leaving the page (the browser disconnects)
or stopping `serve` kills the child; the upload is removed when its preview ends, unless it is
kept to be dropped into the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BulkSyncError
from ..report import TO_FIX, RowResult
from .check import dry_run


@dataclass(frozen=True)
class Limits:
    """What one preview may use."""

    seconds: float = 60.0
    memory_mb: int = 2048
    unpacked_mb: int = 500
    ratio: int = 200  # unpacked / packed, per workbook: real sheets compress 5 to 30 times
    rows: int = 1_000_000


class TooLarge(Exception):
    pass


def unpacked_check(path: Path, limits: Limits) -> None:
    """A zip (xlsx) whose parts would unpack past the cap or ratio: refused, said in words."""
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as z:
        total = sum(i.file_size for i in z.infolist())
    packed = max(1, path.stat().st_size)
    if total > limits.unpacked_mb * 1024 * 1024 or total / packed > limits.ratio:
        raise TooLarge(
            f"this workbook unpacks to {total / 1e6:,.0f} MB from {packed / 1e6:,.1f} MB: "
            f"more than a preview takes ({limits.unpacked_mb} MB, {limits.ratio} times its size). "
            "Save it as CSV, or split it."
        )


async def run_preview(
    path: Path, mapping: str, limits: Limits, gone: Any, children: set[Any]
) -> dict[str, Any]:
    """The preview's result, from a child process; ``gone()`` true once the browser left."""
    try:
        unpacked_check(path, limits)
    except (TooLarge, zipfile.BadZipFile, OSError) as exc:
        return {
            "error": str(exc)
            if isinstance(exc, TooLarge)
            else f"this file cannot be read as a workbook: {exc}"
        }
    argv = [sys.executable, "-m", "bulk_sync.review.preview", str(path), mapping,
            str(limits.memory_mb), str(limits.rows)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, start_new_session=True
    )
    children.add(proc)
    try:
        out = asyncio.ensure_future(proc.communicate())
        waited = 0.0
        while not out.done():
            await asyncio.wait({out}, timeout=0.2)
            waited += 0.2
            if gone():
                return {"error": "the preview was stopped: the page was left"}
            if waited >= limits.seconds and not out.done():
                took = f"the preview took longer than {limits.seconds:g} s and was stopped"
                return {"error": f"{took}: the file is too large to preview here. Drop it, or split it."}
        stdout, _ = out.result()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        children.discard(proc)
    try:
        return dict(json.loads(stdout.decode("utf-8")))
    except ValueError:
        why = "it ran out of its memory limit" if proc.returncode and proc.returncode < 0 else "it stopped"
        return {
            "error": f"the preview failed ({why}, code {proc.returncode}): "
            "the file is too large to preview here"
        }


def preview(path: Path, mapping: str, max_rows: int) -> dict[str, Any]:
    """The dry run of ``path``: counts, the first problems, the first payloads (in the child)."""
    counts: dict[str, int] = {}
    problems: list[dict[str, Any]] = []

    def emit(one: RowResult) -> None:
        counts[one.status] = counts.get(one.status, 0) + 1
        if sum(counts.values()) > max_rows:
            raise TooLarge(f"the file has more than {max_rows:,} rows: more than a preview takes")
        if one.status in TO_FIX and len(problems) < 50:
            problems.append({"row": one.row_number, "column": one.column, "message": one.message})

    try:
        bodies = dry_run(path, mapping, emit, show=3)
    except (BulkSyncError, TooLarge) as exc:
        return {"error": str(exc)}
    return {"counts": counts, "problems": problems, "payloads": [json.dumps(b, indent=2) for b in bodies]}


def main(argv: list[str]) -> int:
    path, mapping, memory_mb, max_rows = argv
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.nice(5)  # a preview yields to the runs and the page
    import resource

    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = preview(Path(path), mapping, int(max_rows))
    except MemoryError:
        result = {
            "error": f"the preview needed more than {memory_mb} MB: the file is too large to preview here"
        }
    except Exception as exc:  # one line for the page, never a traceback
        result = {"error": f"the preview failed: {type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
