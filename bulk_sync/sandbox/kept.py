"""Sandbox, kept: what the emulator holds, kept in a JSON file between runs, so that a rehearsal of
a scheduled job against it (``run --sandbox`` with a profile or a job, ``watch --sandbox``) finds
tonight what last night's sent: the records, their ids, the soft deletes. The counters of what it
received start again each time.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .app import SandboxState

KEPT = ("records", "opportunities", "ids", "soft_deleted")
VERSION = 1
AGAIN = "remove it to start the sandbox afresh"


class KeptError(Exception):
    """The kept file cannot be read or written (its message says which and why)."""


def load(path: Path, state: SandboxState) -> None:
    """Fill ``state`` from ``path`` (nothing kept yet: nothing to fill)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise KeptError(f"the sandbox's kept records {path} cannot be read ({exc}): {AGAIN}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise KeptError(f"the sandbox's kept records {path} are not of this version: {AGAIN}")
    for name in KEPT:
        value: Any = data.get(name, {})
        if not isinstance(value, dict):
            raise KeptError(f"the sandbox's kept records {path} are damaged ({name}): {AGAIN}")
        getattr(state, name).update(value)


def save(state: SandboxState, path: Path) -> None:
    """Write what ``state`` holds to ``path``, whole or not at all (a temporary file renamed)."""
    data = {"version": VERSION, **{name: getattr(state, name) for name in KEPT}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sandbox-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise KeptError(f"the sandbox's records could not be kept in {path}: {exc}") from exc
