"""Folder drop, the inbox: the routing rules, which files count, what wakes the watcher, names
in ``done/`` and ``failed/`` that never overwrite, and the lock that keeps one watcher per inbox.
Read by the watcher; kept apart from its loop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .lockfile import LockFile

log = logging.getLogger(__name__)

STATE_DIRS = ("processing", "done", "failed")
LOCK_NAME = ".bulk-sync-watch.lock"  # hidden: never taken as a dropped file
IGNORED = ("~$*", ".~lock.*#", "*.tmp", "*.part", "*.crdownload", "*.swp", "*.partial", "~*.tmp")


@dataclass(frozen=True)
class Route:
    """Files whose path (relative to the inbox, with ``/``) matches ``match`` use ``mapping``."""

    match: str
    mapping: str
    profile: str | None = None  # the job of a route that names no profile of its own
    sheet: str | None = None


@dataclass
class WatchConfig:
    inbox: Path
    routes: list[Route]
    settle: float = 5.0
    poll: float = 2.0
    config: str | None = None  # the config file the routes (and their jobs) came from
    profile: str | None = None  # the job of a route that names no profile of its own
    review_url: str | None = None  # `bulk-sync serve`'s address: alerts link to a run's page


def start_observer(inbox: Path, wake: threading.Event) -> Any:
    """watchdog events wake the loop at once; polling goes on anyway (network shares often send
    no events). Without watchdog, polling alone."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:  # pragma: no cover
        return None

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            wake.set()

    try:
        observer = Observer()
        observer.schedule(Wake(), str(inbox), recursive=True)
        observer.start()
    except OSError as exc:  # e.g. inotify limits: polling still works
        log.warning("file events unavailable (%s); polling only", exc)
        return None
    return observer


def routes_from(
    raw: list[dict[str, Any]] | None, fallback_mapping: str | None, base: Path | None = None
) -> list[Route]:
    """The config's [[watch.routes]], then the fallback mapping for every other file. A route's
    relative mapping path is read from ``base`` (the config file's folder), not the working one."""
    routes = []
    for i, r in enumerate(raw or [], start=1):
        unknown = set(r) - {"match", "mapping", "profile", "sheet"}
        if unknown or "match" not in r or "mapping" not in r:
            raise UsageError(
                f"[[watch.routes]] #{i}: needs `match` and `mapping` (and may have `profile`, `sheet`)"
                + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )
        mapping = Path(str(r["mapping"])).expanduser()
        if base is not None and not mapping.is_absolute():
            mapping = base / mapping
        routes.append(Route(str(r["match"]), str(mapping), r.get("profile"), r.get("sheet")))
    if fallback_mapping:
        routes.append(Route("*", fallback_mapping))
    return routes


def inside(target: Path, root: Path) -> bool:
    try:
        target.relative_to(root)
    except ValueError:
        return False
    return True


def mtime(p: Path) -> float:
    try:
        return p.lstat().st_mtime
    except OSError:
        return 0.0


def is_output(p: Path) -> bool:
    return p.name in {"route.json", "child.pid"}


def safe_stem(stem: str) -> str:
    return "".join(c if c not in '<>:"/\\|?*' else "_" for c in stem).strip() or "file"


def unique_path(path: Path) -> Path:
    n, candidate = 2, path
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


def unique_stem(folder: Path, stem: str) -> str:
    """A stem no file in ``folder`` starts with (so neither the input nor a report is overwritten)."""
    n, candidate = 2, stem
    while any(
        p.name.startswith(candidate + ".") or p.name.startswith(candidate + "-") for p in folder.iterdir()
    ):
        candidate = f"{stem}-{n}"
        n += 1
    return candidate


def hold_inbox(inbox: Path) -> LockFile:
    """The inbox's lock, held for the watcher's life (released by the OS however it dies): a second
    watcher on the same inbox would take the same files twice. UsageError naming the first one."""
    lock = LockFile(inbox / LOCK_NAME)
    try:
        holder = lock.acquire()
    except OSError as exc:
        raise UsageError(
            f"cannot lock the inbox {inbox} ({exc.strerror or exc}): it must be writable"
        ) from exc
    if holder is not None:
        raise UsageError(
            f"the inbox {inbox} is already watched by another bulk-sync watch ({holder}); "
            "stop that one first, or watch another folder"
        )
    return lock
