"""Folder drop: ``bulk-sync watch INBOX`` turns spreadsheets dropped in a folder into runs.

Lifecycle of a dropped file::

    INBOX/any/sub/folder/export.csv         dropped by a person (or a CRM's scheduled export)
      -> INBOX/processing/<id>/export.csv   once complete (size and mtime unchanged for --settle s)
      -> INBOX/done/export-<time>.csv       every row synced, unchanged or skipped (or within
         (+ -report.csv/.xlsx/-errors)      --max-failures), with its reports beside it
      -> INBOX/failed/export-<time>.csv     could not start, matched no routing rule, or too many
         (+ reports, or -error.txt)         rows did not sync

Each file is synced by :class:`~bulk_sync.job.Sync` in a child process (its own session, so a
Ctrl-C or SIGTERM meant for the watcher does not cut it short), handed the job as a
:class:`~bulk_sync.job.spec.JobSpec` in JSON on its standard input: the job of the file's route
(made once, when the watcher started), with the file's part filled in (its path, mapping and
sheet, its job name, what its name accepts, where its reports go). A crash of one run never takes
the watcher down, and the child's exit code decides where the file goes. A run that was aborted
(SIRO down, token refused, or the watcher killed) leaves the file in ``processing/``; the next
pass, or the next start after a crash, runs it again, and the state store skips every record SIRO
acknowledged before. Names in ``done/`` and ``failed/`` carry the run time and never overwrite.

Ignored in the inbox: hidden files, Office/LibreOffice lock files (``~$x.xlsx``, ``.~lock.x#``),
``*.tmp``, ``*.part``, ``*.crdownload``, ``*.swp``, and the three folders above. A symlink that
points outside the inbox is refused (moved to ``failed/`` with the reason).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import EXIT_ABORTED, EXIT_OK, EXIT_ROWS_FAILED
from .inbox import (
    IGNORED,
    STATE_DIRS,
    Route,
    WatchConfig,
    inside,
    is_output,
    mtime,
    safe_stem,
    start_observer,
    unique_path,
    unique_stem,
)
from .job.spec import JobSpec

log = logging.getLogger(__name__)

AGAIN_AFTER_ABORT_SECONDS = 300.0
CHILD_LOCK_WAIT_SECONDS = 120  # longer than a stopping run's grace for requests in flight (30 s)
PARENT_ENV = "BULK_SYNC_WATCHER_PID"  # set for a run the watcher starts: die with the watcher


@dataclass
class _Settling:
    """A file in the inbox as last seen: its size and time, and since when they have not changed."""

    size: int
    mtime: int
    since: float


class Watcher:
    """The inbox's loop. ``jobs``: the job of each profile the routes name (None: the watch's
    default), filled in for each file; ``child``: the command that runs a job read from its stdin."""

    def __init__(
        self,
        cfg: WatchConfig,
        jobs: Mapping[str | None, JobSpec],
        child: Sequence[str],
        say: Callable[[str], None] = print,
    ) -> None:
        self.cfg = cfg
        self.jobs = dict(jobs)
        self.child_command = list(child)
        self.inbox = cfg.inbox.resolve()
        self.say = say
        self.dirs = {name: self.inbox / name for name in STATE_DIRS}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self._seen: dict[Path, _Settling] = {}
        self._retry_at: dict[Path, float] = {}
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.wake = threading.Event()

    # ------------------------------------------------------------------ finding complete files

    def candidates(self) -> list[Path]:
        """Files in the inbox that are not ignored, oldest first."""
        found = []
        for root, dirs, files in os.walk(self.inbox, followlinks=False):
            here = Path(root)
            if here == self.inbox:
                dirs[:] = [d for d in dirs if d not in STATE_DIRS]
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith(".") or any(fnmatch.fnmatch(name, pat) for pat in IGNORED):
                    continue
                found.append(here / name)
        return sorted(found, key=lambda p: (mtime(p), str(p)))

    def settled(self, now: float | None = None) -> tuple[list[Path], int]:
        """The candidates whose size and mtime have not changed for ``settle`` seconds, and how
        many others are still being written."""
        now = time.monotonic() if now is None else now
        ready, waiting = [], 0
        current = set()
        for p in self.candidates():
            current.add(p)
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            seen = self._seen.get(p)
            if seen is None or (seen.size, seen.mtime) != (st.st_size, st.st_mtime_ns):
                self._seen[p] = _Settling(st.st_size, st.st_mtime_ns, now)
                waiting += 1
            elif now - seen.since >= self.cfg.settle:
                ready.append(p)
            else:
                waiting += 1
        for gone in set(self._seen) - current:
            del self._seen[gone]
        return ready, waiting

    # ------------------------------------------------------------------ one file

    def route_for(self, rel: str) -> Route | None:
        for r in self.cfg.routes:
            if fnmatch.fnmatch(rel, r.match) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], r.match):
                return r
        return None

    def take(self, path: Path) -> Path | None:
        """Move a settled file into ``processing/<id>/`` (atomically); None if it was refused."""
        rel = path.relative_to(self.inbox).as_posix()
        self._seen.pop(path, None)
        if path.is_symlink():
            target = path.resolve()
            if not inside(target, self.inbox):
                self.refuse(path, f"{rel} is a link to {target}, outside the inbox; links out are refused")
                return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        work = unique_path(self.dirs["processing"] / f"{stamp}-{safe_stem(path.stem)}")
        work.mkdir(parents=True)
        moved = work / path.name
        try:
            os.replace(path, moved)
        except OSError as exc:  # e.g. still locked by Excel on Windows: try again next pass
            work.rmdir()
            log.warning("cannot move %s yet: %s", rel, exc)
            return None
        route = self.route_for(rel)
        (work / "route.json").write_text(
            json.dumps({"original": rel, "route": None if route is None else route.__dict__}),
            encoding="utf-8",
        )
        return work

    def process(self, work: Path) -> str:
        """Run one file in ``processing/<id>/``; file it in done/ or failed/ (or leave it for a retry).
        Returns where it went: "done", "failed" or "processing"."""
        meta = json.loads((work / "route.json").read_text(encoding="utf-8"))
        original: str = meta["original"]
        files = [
            p for p in work.iterdir() if p.is_file() and p.name != "route.json" and not p.name.startswith("~")
        ]
        data = [p for p in files if not is_output(p)]
        if len(data) != 1:
            self._file(
                work, "failed", f"{original}: the processing folder {work.name} holds no single input file"
            )
            return "failed"
        path = data[0]
        route = Route(**meta["route"]) if meta["route"] else None
        if route is None:
            rules = ", ".join(r.match for r in self.cfg.routes) or "none configured"
            return self._file(
                work,
                "failed",
                f"{original}: no routing rule matches this file (rules: {rules}); nothing was sent",
            )
        job = self.jobs.get(route.profile or self.cfg.profile)
        if job is None:  # left in processing/ by a watcher started with another config
            return self._file(
                work,
                "failed",
                f"{original}: its route's profile {route.profile!r} is not one this watcher runs; "
                "nothing was sent",
            )
        out = work / "out"
        out.mkdir(exist_ok=True)
        code = self._run(work, self.job_for(job, work, path, route, original), original)
        if code == EXIT_ABORTED:
            self._retry_at[work] = time.monotonic() + AGAIN_AFTER_ABORT_SECONDS
            self.say(
                f"{original}: the run was aborted (exit 3); it stays in processing/ and is resumed later"
            )
            log.warning("%s aborted; left in processing/ for a later pass", original)
            return "processing"
        where = "done" if code == EXIT_OK else "failed"
        why = None
        if code not in (EXIT_OK, EXIT_ROWS_FAILED):
            said = _error_lines(out / "run.log")
            why = f"{original}: the run could not start (exit {code}); nothing was sent" + (
                f": {said}" if said else "; see the -run.log file"
            )
        return self._file(work, where, why)

    def job_for(self, job: JobSpec, work: Path, path: Path, route: Route, original: str) -> JobSpec:
        """The route's ``job`` for the file ``path`` in ``work``, as the file's name says."""
        out, name = work / "out", Path(original)
        stem = name.stem.lower()
        guards = job.guards
        if guards.job is not None and "-fixed-" not in name.stem:
            # the drift check compares a route's drops of the same export: its name with the digits
            # (dates, counters) taken out, so appointments-2026-11-30.csv is the job of every night
            named: str | None = f"watch:{route.match}:{job_name(name.name)}"
        else:  # no drift check (the profile's), or rows fixed on the review page: a correction
            named = None
        mirror = guards.mirror
        if mirror is not None and stem.endswith("accept-truncation"):  # a cut-short file accepted
            mirror = replace(mirror, accept_truncation=True)
        guards = replace(
            guards,
            job=named,
            accept_drift=guards.accept_drift or stem.endswith("accept-drift"),  # dropped again, accepted
            mirror=mirror,
        )
        outputs = replace(
            job.outputs,
            report=str(out / "report.csv"),
            xlsx=True,
            summary_json=str(out / "summary.json"),
            review_url=self.review_link(work),
        )
        return job.model_copy(
            update={
                "command": "run",
                "files": [str(path)],
                "mapping": route.mapping,
                "guards": guards,
                "reading": replace(job.reading, sheet=route.sheet or job.reading.sheet),
                "outputs": outputs,
                "wait_lock": CHILD_LOCK_WAIT_SECONDS,  # a dying run of this file may hold the state
            }
        )

    def _run(self, work: Path, job: JobSpec, original: str) -> int:
        """The job in a child process that dies with the watcher, handed over on its stdin (the
        spec names where the token is, never the token); its exit code."""
        out = work / "out"
        self.say(f"syncing {original} (mapping {job.mapping})")
        log.info("syncing %s with %s", original, job.mapping)
        env = {**os.environ, PARENT_ENV: str(os.getpid())}  # the run dies with the watcher (Linux)
        with (out / "run.log").open("wb") as console:
            self.child = subprocess.Popen(
                self.child_command,
                stdin=subprocess.PIPE,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
            (work / "child.pid").write_text(str(self.child.pid))
            assert self.child.stdin is not None
            try:
                self.child.stdin.write(job.to_json().encode("utf-8"))
                self.child.stdin.close()
            except BrokenPipeError:  # it died before reading: its exit code says so
                pass
            code = self.child.wait()
            self.child = None
        return code

    def review_link(self, work: Path) -> str | None:
        """The review page of the run in ``work`` (``--review-url``), for alerts and -error.txt."""
        if not self.cfg.review_url:
            return None
        return f"{self.cfg.review_url.rstrip('/')}/runs/by-watch/{work.name}"

    def _file(self, work: Path, where: str, reason: str | None) -> str:
        """Move the input and its outputs from ``work`` to done/ or failed/, named with the time."""
        meta = json.loads((work / "route.json").read_text(encoding="utf-8"))
        original = Path(meta["original"])
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest_dir = self.dirs[where]
        base = unique_stem(dest_dir, f"{safe_stem(original.stem)}-{stamp}")
        inputs = [p for p in work.iterdir() if p.is_file() and p.name not in {"route.json", "child.pid"}]
        for p in inputs:
            os.replace(p, dest_dir / f"{base}{p.suffix}")
        # what the run was (its original name, route, id): the review page reads it beside the reports
        record = {**meta, "run": work.name, "filed": where, "summary": _summary(work / "out")}
        (dest_dir / f"{base}-route.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        out = work / "out"
        if out.is_dir():
            for p in sorted(out.iterdir()):
                suffix = p.name.removeprefix("report")  # report.csv -> -report.csv, report-errors.csv ...
                name = f"{base}-report{suffix}" if p.name.startswith("report") else f"{base}-{p.name}"
                if p.name == "run.log" and reason is None:
                    p.unlink()
                    continue
                os.replace(p, dest_dir / name)
            out.rmdir()
        link = self.review_link(work)
        if where == "failed" and reason is None:
            fixes = sorted(dest_dir.glob(f"{glob.escape(base)}-report-errors.*"))
            reason = _rows_reason(
                record["summary"], original.as_posix(), base, fixes[0].name if fixes else None
            )
        if reason:
            text = reason + (f"\nFix the rows in the browser: {link}" if link else "")
            (dest_dir / f"{base}-error.txt").write_text(text + "\n", encoding="utf-8")
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
        self._retry_at.pop(work, None)
        self.say(
            f"{original.as_posix()} -> {where}/{base}{original.suffix}" + (f" ({reason})" if reason else "")
        )
        log.info("%s filed in %s as %s", original, where, base)
        return where

    def refuse(self, path: Path, reason: str) -> None:
        base = unique_stem(self.dirs["failed"], f"{safe_stem(path.stem)}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, self.dirs["failed"] / f"{base}{path.suffix}")
        (self.dirs["failed"] / f"{base}-error.txt").write_text(reason + "\n", encoding="utf-8")
        self.say(f"refused: {reason}")
        log.warning("refused: %s", reason)

    # ------------------------------------------------------------------ loop

    def pending(self) -> list[Path]:
        """Files left in processing/ (a crash, or an aborted run) that are due."""
        now = time.monotonic()
        return sorted(
            d for d in self.dirs["processing"].iterdir()
            if d.is_dir() and (d / "route.json").exists() and self._retry_at.get(d, 0.0) <= now
        )  # fmt: skip

    def run_once(self, wait_for_settle: bool = True) -> int:
        """Process what is in the inbox (and left in processing/), then return. Files still being
        written are waited for (up to 10 settle periods). Returns how many files were filed."""
        handled = 0
        deadline = time.monotonic() + max(10 * self.cfg.settle, 30.0)
        while not self.stopping:
            for work in self.pending():
                if self.stopping:
                    break
                if self.process(work) != "processing":
                    handled += 1
            ready, waiting = self.settled()
            for path in ready:
                if self.stopping:
                    break
                taken = self.take(path)
                if taken is not None and self.process(taken) != "processing":
                    handled += 1
            if ready:
                continue
            if not waiting or not wait_for_settle or time.monotonic() > deadline:
                break
            time.sleep(min(self.cfg.poll, self.cfg.settle / 2))
        return handled

    def run_forever(self) -> None:
        observer = start_observer(self.inbox, self.wake)
        try:
            while not self.stopping:
                self.run_once(wait_for_settle=False)
                self.wake.wait(self.cfg.poll)
                self.wake.clear()
        finally:
            if observer is not None:
                observer.stop()
                observer.join(5)

    def on_signal(self, signum: int, frame: Any = None) -> None:
        """First signal: finish and file the current file, then stop. Second: stop its run too
        (it aborts cleanly, exit 3, and stays in processing/ to be resumed)."""
        if self.stopping and self.child is not None:
            self.child.send_signal(signal.SIGTERM)
        self.stopping = True
        self.wake.set()


def _error_lines(log: Path) -> str:
    """What a run that could not start said (its `error:` lines), for the -error.txt file."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return " ".join(line.removeprefix("error: ") for line in lines if line.startswith("error:"))[:2000]


def job_name(name: str) -> str:
    """A drop's name as its job (the drift check): digits and an ``accept-drift`` (or
    ``accept-truncation``) ending left out."""
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    stem = re.sub(r"[\s_-]*accept-(?:drift|truncation)$", "", stem, flags=re.IGNORECASE)
    return re.sub(r"[0-9]+", "#", stem) + dot + suffix


def die_with_parent(parent: str | None) -> None:
    """In a run the watcher started: ask the kernel to send SIGTERM when the watcher dies (Linux
    PR_SET_PDEATHSIG), so that a killed watcher leaves no run behind holding the state file. The run
    then stops as on any SIGTERM (exit 3: the file stays in processing/ and is resumed). If the
    watcher is already gone, stop at once. Elsewhere nothing is done (see the README). ``parent``:
    ``$BULK_SYNC_WATCHER_PID`` (PARENT_ENV), which the watcher sets for the runs it starts."""
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # it died before the request: nobody will signal us
        os.kill(os.getpid(), signal.SIGTERM)


def _summary(out: Path) -> dict[str, Any] | None:
    """The run's summary JSON (its counts), if it wrote one."""
    try:
        data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _rows_reason(summary: dict[str, Any] | None, original: str, base: str, fixes: str | None) -> str:
    """Why a file whose run finished went to failed/: how many rows did not sync, of what kind, and
    what to do with them."""
    counts = (summary or {}).get("counts") or {}
    if not isinstance(counts, dict):
        counts = {}
    fix = sum(int(counts.get(k, 0)) for k in ("invalid", "rejected"))
    resend = sum(int(counts.get(k, 0)) for k in ("failed", "not_sent"))
    rows = sum(int(v) for v in counts.values() if isinstance(v, int))
    if not fix and not resend:
        return f"{original}: rows did not sync; see {base}-report.csv"
    parts = []
    if fix:
        where = f"fix them in {fixes} and drop it here again" if fixes else f"see {base}-report.csv"
        parts.append(f"{fix:,} row{'s' if fix != 1 else ''} to fix (invalid or rejected): {where}")
    if resend:
        parts.append(f"{resend:,} not sent or failed: they are sent again when the file is dropped again")
    return f"{original}: {fix + resend:,} of {rows:,} rows did not sync; " + "; ".join(parts)
