"""CLI, delete: `bulk-sync delete --external-ids FILE`: delete engagements from SIRO by externalId,
after a confirmation (or --yes); one line a record, and the state forgets what was deleted.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .. import logs
from ..errors import EXIT_OK, EXIT_ROWS_FAILED, CallFailed, UsageError
from ..settings import PRODUCTION_BASE_URL, read_token
from ..state import StateStore, target_of
from ..upload.calls import SiroCalls
from .progress import err
from .sending import check_base_url


def read_ids(path: Path) -> list[str]:
    """externalIds from a file: one a line, or a CSV with an external_id/externalId column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --external-ids {path}: {exc}") from exc
    lines = text.splitlines()
    head = next(csv.reader(lines[:1]), [])
    column = next((c for c in head if c.strip() in ("external_id", "externalId")), None)
    if column is not None:
        ids = [row[column].strip() for row in csv.DictReader(lines) if (row.get(column) or "").strip()]
    else:
        ids = [line.strip() for line in lines if line.strip()]
    return list(dict.fromkeys(ids))


def delete_command(args: argparse.Namespace) -> int:
    redactor = logs.setup(None, "warning", "text", [])
    ids = read_ids(Path(args.external_ids))
    if not ids:
        raise UsageError(f"--external-ids {args.external_ids} holds no externalId")
    base_url = check_base_url(args.base_url or PRODUCTION_BASE_URL, args.allow_insecure_http)
    token = read_token(args.token_file, env_name=args.token_env)
    redactor.secrets.append(token.get_secret_value())
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"delete {len(ids):,} engagements ({shown})? Nothing deleted: pass --yes to confirm"
            )
        answer = input(f"Delete {len(ids):,} engagements from SIRO at {base_url} ({shown})? Type yes: ")
        if answer.strip().lower() != "yes":
            print("nothing deleted")
            return EXIT_OK
    deleted: list[str] = []
    missing: list[str] = []
    failed: list[str] = []
    with SiroCalls(base_url, token.get_secret_value()) as calls:
        for ext in ids:
            try:
                (deleted if calls.delete(ext) else missing).append(ext)
            except CallFailed as exc:
                failed.append(ext)
                err(f"{ext}: not deleted: {exc}")
    if args.state and deleted:
        store = StateStore(Path(args.state), target_of(base_url))
        try:
            store.forget(deleted)
        finally:
            store.close()
    print(f"deleted {len(deleted):,}, not found {len(missing):,}, failed {len(failed):,} (of {len(ids):,})")
    for ext in missing[:20]:
        print(f"  not found: {ext}")
    return EXIT_ROWS_FAILED if failed else EXIT_OK
