"""Pipeline, finish: the outputs after a run (or after it could not start), the same for every
caller: the error files of the rows to fix, the run's outcome as data (the summary JSON), and the
end-of-run webhook. Each returns the problems a person should see; none changes the run's result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errorfile import Failures, Kept, write_error_files
from ..errors import EXIT_OK, BulkSyncError
from ..notify import post_summary
from ..report import Summary, summary_dict
from .plan import Plan


def error_files(
    plan: Plan, failures: Failures, report_path: Path, kept: Kept
) -> tuple[list[Path], str | None]:
    """One error file per input file with rows to fix; (paths, why none could be written)."""
    if not failures:
        return [], None
    try:
        return write_error_files([src for src, _ in plan.jobs], failures, report_path, kept), None
    except (BulkSyncError, OSError) as exc:  # the run's outcome stands; say why the file is missing
        return [], f"could not write the error file: {exc}"


@dataclass(frozen=True)
class Outcome:
    """What the run was and where its outputs are (the summary JSON's fields besides the counts)."""

    command: str
    code: int
    files: Sequence[str] = ()
    started_at: str | None = None
    written: Sequence[Path] = ()
    error: str | None = None
    mapping: str | None = None
    review_url: str | None = None  # the review page of this run (`watch --review-url`)


def outcome_data(summary: Summary | None, run: Outcome) -> dict[str, Any]:
    """The run's outcome as JSON-ready data: counts, exit code, times, files, outputs, error."""
    data: dict[str, Any] = (
        summary_dict(summary, run.code)
        if summary is not None
        else {"exit_code": run.code, "rows": 0, "counts": {}, "files": list(run.files)}
    )
    data.update(
        command=run.command,
        started_at=run.started_at,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        report=str(run.written[0]) if run.written else None,
        outputs=[str(p) for p in run.written],
        mapping=run.mapping,
    )
    if run.review_url:
        data["review_url"] = run.review_url
    if run.error:
        data["error"] = run.error
    return data


def write_summary_json(path: str, data: dict[str, Any]) -> str | None:
    """Write ``data`` to ``path``; why it could not be written, or None."""
    try:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    except OSError as exc:
        return f"could not write the summary JSON {path}: {exc.strerror or exc}"
    return None


def notify(url: str | None, data: dict[str, Any], *, notify_on: str, command: str, code: int) -> str | None:
    """POST the outcome to the webhook when asked (a dry run posts nothing, anywhere); the problem,
    or None."""
    if not url or command == "validate" or (notify_on != "always" and code == EXIT_OK):
        return None
    return post_summary(url, data, label=" ".join(Path(f).name for f in data.get("files", [])[:3]) or command)
