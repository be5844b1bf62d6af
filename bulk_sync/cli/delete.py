"""CLI, delete: `bulk-sync delete --external-ids FILE`: delete engagements from SIRO by externalId,
after a confirmation (or --yes); one line a record.

The state is kept true as it goes: the state file `run` uses (the same default, or --state; none
with --no-state, said in the output) forgets each externalId as soon as SIRO's answer proves it is
gone (``true``: deleted; ``false``: SIRO had none, so it is not there either way). A delete killed
mid-way and run again finishes the job: the ids it deleted before come back ``false`` and are
forgotten then. Given a bulk_sync report, only the rows it says SIRO holds (``synced``,
``unchanged``) are deleted, unless --all-rows. --dry-run lists what would go and sends nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import logs
from ..csvfields import long_fields
from ..errors import EXIT_ABORTED, EXIT_OK, EXIT_ROWS_FAILED, CallFailed, StateError, UsageError
from ..job.targets import check_base_url
from ..report import SYNCED, UNCHANGED
from ..settings import PRODUCTION_BASE_URL, read_token
from ..state import StateLock, StateStore, check_path, target_of
from ..upload.calls import SiroCalls
from .process import default_state
from .progress import err

IN_SIRO = (SYNCED, UNCHANGED)  # a report's rows whose record SIRO holds
FAILED_IN_A_ROW = 5  # this many deletes failed one after the other: SIRO (or the way to it) is down


@dataclass
class Chosen:
    """The externalIds to delete, and for a report, the statuses of the rows taken and left out."""

    ids: list[str]
    report: bool = False
    taken: Counter[str] = field(default_factory=Counter)
    left: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        """What was taken from a report, and what was not ("" for a plain list)."""
        if not self.report:
            return ""
        taken = ", ".join(f"{n:,} {s}" for s, n in sorted(self.taken.items())) or "none"
        text = f"from the report: the rows {taken}"
        if self.left:
            left = ", ".join(f"{n:,} {s}" for s, n in sorted(self.left.items()))
            text += f"; left out: {left} (pass --all-rows to delete those too)"
        return text


def read_ids(path: Path, all_rows: bool = False) -> Chosen:
    """externalIds from a file: one a line, or a CSV with an external_id/externalId column. A
    bulk_sync report (it has a status column too) gives only its rows SIRO holds, unless all_rows."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --external-ids {path}: {exc}") from exc
    with long_fields():  # a report's cells can be long
        return _chosen(text.splitlines(), all_rows)


def _chosen(lines: list[str], all_rows: bool) -> Chosen:
    """read_ids' choice among the file's ``lines``, read a row at a time."""
    head = next(csv.reader(lines[:1]), [])
    column = next((c for c in head if c.strip() in ("external_id", "externalId")), None)
    if column is None:
        return Chosen(list(dict.fromkeys(line.strip() for line in lines if line.strip())))
    status = "status" if "status" in head else None
    chosen = Chosen([], report=status is not None)
    for row in csv.DictReader(lines):
        ext = _unneutralised((row.get(column) or "").strip()) if status else (row.get(column) or "").strip()
        if not ext:
            continue
        state = (row.get(status) or "").strip() if status else ""
        if status and not all_rows and state not in IN_SIRO:
            chosen.left[state or "(no status)"] += 1
            continue
        chosen.taken[state] += 1
        chosen.ids.append(ext)
    chosen.ids = list(dict.fromkeys(chosen.ids))
    return chosen


def _unneutralised(text: str) -> str:
    """A report cell as it was before the report kept a spreadsheet from running it ('=x -> =x)."""
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r" else text


def state_path(args: argparse.Namespace) -> Path | None:
    """The state `run` would use: --state, else the default file; None with --no-state."""
    if args.no_state:
        return None
    path = Path(args.state) if args.state else default_state()
    check_path(path)
    return path


def delete_command(args: argparse.Namespace) -> int:
    redactor = logs.setup(None, "warning", "text", [])
    chosen = read_ids(Path(args.external_ids), args.all_rows)
    if not chosen.ids:
        raise UsageError(
            f"--external-ids {args.external_ids} holds no externalId to delete"
            + (f" ({chosen.describe()})" if chosen.report else "")
        )
    base_url = check_base_url(args.base_url or PRODUCTION_BASE_URL, args.allow_insecure_http)
    path = state_path(args)
    if args.dry_run:
        return _dry_run(chosen, base_url, path)
    token = read_token(args.token_file, env=os.environ, env_name=args.token_env)
    redactor.secrets.append(token.get_secret_value())
    if not _confirmed(args, chosen, base_url):
        print("nothing deleted")
        return EXIT_OK
    print(_state_line(path, "forgets each one as SIRO confirms it"), flush=True)
    with _held(path, target_of(base_url), args.wait_lock) as store:
        known = set(store.hashes(chosen.ids)) if store is not None else set()
        with SiroCalls(base_url, token.get_secret_value()) as calls:
            outcome = _delete_each(calls, store, chosen.ids)
    return _summary(outcome, chosen, known, path)


def _dry_run(chosen: Chosen, base_url: str, path: Path | None) -> int:
    """List what would go, send nothing (no token needed)."""
    extra = f" ({chosen.describe()})" if chosen.report else ""
    print(f"dry run: would delete {len(chosen.ids):,} engagements from SIRO at {base_url}{extra}:")
    for ext in chosen.ids:
        print(f"  {ext}")
    if path is not None and path.is_file():
        with StateStore(path, target_of(base_url)) as store:
            known = len(store.hashes(chosen.ids))
        print(f"state: {path} would forget them ({known:,} of them are in it)")
    else:
        print(_state_line(path, "would forget them"))
    print("nothing was sent (dry run)")
    return EXIT_OK


def _state_line(path: Path | None, what: str) -> str:
    if path is None:
        return (
            "state: not changed (--no-state): a later run with a state that holds these rows reports "
            "them unchanged and does not send them again"
        )
    if not path.is_file():
        return f"state: {path} does not exist yet: nothing in it to forget"
    return f"state: {path} {what}"


def _confirmed(args: argparse.Namespace, chosen: Chosen, base_url: str) -> bool:
    ids = chosen.ids
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
    which = f"; {chosen.describe()}" if chosen.report else ""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"delete {len(ids):,} engagements ({shown}{which})? Nothing deleted: pass --yes to confirm"
        )
    answer = input(f"Delete {len(ids):,} engagements from SIRO at {base_url} ({shown}{which})? Type yes: ")
    return answer.strip().lower() == "yes"


@contextmanager
def _held(path: Path | None, target: str, wait_lock: float) -> Iterator[StateStore | None]:
    """The state, locked against a run using it at the same time (None: no state, or none yet)."""
    if path is None or not path.is_file():
        yield None
        return
    lock = StateLock(path)
    lock.acquire(wait_lock)
    try:
        with StateStore(path, target) as store:
            yield store
    finally:
        lock.release()


@dataclass
class Outcome:
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # SIRO answered false: it had none
    failed: list[str] = field(default_factory=list)
    untried: list[str] = field(default_factory=list)  # stopped before them
    stopped: str = ""  # why the deletes stopped before the end ("" when they did not)


def _delete_each(calls: SiroCalls, store: StateStore | None, ids: list[str]) -> Outcome:
    """One DELETE an id; the state forgets an id in the same moment SIRO's answer proves it gone."""
    out = Outcome()
    in_a_row = 0
    for i, ext in enumerate(ids):
        try:
            gone = calls.delete(ext)
        except CallFailed as exc:
            out.failed.append(ext)
            err(f"{ext}: not deleted: {exc}")
            in_a_row += 1
            if in_a_row >= FAILED_IN_A_ROW or str(exc).startswith("SIRO refused the API token"):
                out.untried = ids[i + 1 :]
                out.stopped = f"stopped after {in_a_row} failed delete(s) in a row ({exc})"
                break
            continue
        in_a_row = 0
        (out.deleted if gone else out.missing).append(ext)
        if store is not None:
            try:
                store.forget([ext])
            except StateError as exc:  # SIRO changed, the state did not: stop before it drifts further
                out.untried = ids[i + 1 :]
                out.stopped = f"the state file could not be written ({exc})"
                break
    return out


def _summary(out: Outcome, chosen: Chosen, known: set[str], path: Path | None) -> int:
    total = len(chosen.ids)
    print(
        f"deleted {len(out.deleted):,}, not found {len(out.missing):,}, failed {len(out.failed):,} "
        f"(of {total:,})"
    )
    for ext in out.missing[:20]:
        print(f"  not found: {ext}")
    if path is not None and path.is_file():
        forgot = sum(1 for ext in (*out.deleted, *out.missing) if ext in known)
        print(f"state: {path} forgot {forgot:,} (the deleted and the not found that it held)")
    if out.stopped:
        err(
            f"error: {out.stopped}; {len(out.untried):,} not tried. Run the same delete again: what "
            "is already gone comes back not found and is forgotten too"
        )
        return EXIT_ABORTED
    return EXIT_ROWS_FAILED if out.failed else EXIT_OK
