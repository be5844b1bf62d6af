"""Review, app: the pages and their few actions, on aiohttp, rendered by Jinja2 (autoescaped) with a
little plain JavaScript for editing cells and paging. Who may use it is ``guard``'s (the key, the
session, the Host, CSRF, the headers); what an edit and a send do is ``edits``'s. Files are reached
only through runs found in the inbox and report folders (ids, never paths) and never through a
symbolic link (``safefs``); static files only by their fixed names; uploads are capped. The page
never holds the SIRO token: the server has none (fixed rows go to the inbox; the watcher sends them).
An action that fails answers with ``{"error": "..."}`` in words a person can act on; the script
shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from aiohttp import web

from ..errors import BulkSyncError
from ..report import STATUSES
from . import bulk
from .edits import Refused, change_of, check, progress, send
from .guard import Guard, any_key
from .preview import Limits, run_preview
from .runs import Grid, Part, Run, find_runs, grid_of
from .safefs import OutsideRoot, create_new, inside, is_plain_dir, is_plain_file, read_plain
from .store import Stale, Store
from .view import View, view
from .words import said

HERE = Path(__file__).parent
STATIC = {"review.js": "application/javascript", "review.css": "text/css"}
NO_NAME = "(no name given)"
UPLOAD_HOURS = 1.0  # how long a previewed upload waits to be dropped


class Review:
    """The review server's state: where runs are, the key, the templates."""

    def __init__(
        self,
        inbox: Path | None,
        reports: list[Path],
        mappings: Path | None,
        *,
        key: str | None = None,
        max_upload_mb: float = 50.0,
        tls: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.inbox = inbox.resolve() if inbox else None
        self.folders = [self.inbox / "done", self.inbox / "failed"] if self.inbox else []
        self.folders += [p.resolve() for p in reports]
        self.mappings = mappings
        self.guard = Guard(key or any_key(), tls=tls)
        self.max_upload = int(max_upload_mb * 1024 * 1024)
        self.uploads = Path(tempfile.mkdtemp(prefix="bulk_sync-uploads-"))  # previews live here
        self.limits = limits or Limits()
        self.children: set[Any] = set()  # previews running (child processes): ended with the server
        self.env = templates()

    @property
    def key(self) -> str:
        return self.guard.key

    @property
    def hosts(self) -> set[str]:
        return self.guard.hosts

    @hosts.setter
    def hosts(self, hosts: set[str]) -> None:
        self.guard.hosts = {h.lower() for h in hosts}

    # -- the application -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard.middleware], client_max_size=self.max_upload)
        r = app.router
        r.add_get("/", self.runs_page)
        r.add_get("/runs/by-watch/{work}", self.by_watch)
        r.add_get("/runs/{id}", self.run_page)
        r.add_get("/runs/{id}/rows", self.rows_fragment)
        r.add_post("/runs/{id}/check", self.check)
        r.add_post("/runs/{id}/send", self.send)
        r.add_post("/runs/{id}/replace", self.bulk)
        r.add_post("/runs/{id}/resend", self.bulk)
        r.add_post("/runs/{id}/undo", self.bulk)
        r.add_get("/runs/{id}/download/{kind}", self.download)
        r.add_get("/preview", self.preview_page)
        r.add_post("/preview", self.preview_upload)
        r.add_post("/preview/{upload}/drop", self.preview_drop)
        r.add_get("/static/{name}", self.static)
        app.on_shutdown.append(self._stop_previews)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _stop_previews(self, app: web.Application) -> None:
        for proc in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _cleanup(self, app: web.Application) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)

    def _page(self, request: web.Request, template: str, **context: Any) -> web.Response:
        csrf = self.guard.csrf(self.guard.session_of(request) or "")
        html = self.env.get_template(template).render(
            csrf=csrf, statuses=STATUSES, static=static_version(), **context
        )
        return web.Response(text=html, content_type="text/html")

    def _run(self, request: web.Request, runs: list[Run] | None = None) -> Run:
        wanted = request.match_info["id"]
        for run in runs if runs is not None else find_runs(self.folders):
            if run.id == wanted:
                return run
        raise web.HTTPNotFound(text="no such run: it was moved or deleted (open the runs list again)")

    def _part(self, request: web.Request, run: Run) -> Part:
        """The error file the request is about (``?file=`` names one of the run's; none: its first)."""
        part = run.part(request.query.get("file"))
        if part is None:
            raise Refused("this run has no such error file (moved or deleted?): open the run again", 404)
        return part

    # -- pages ---------------------------------------------------------------------

    async def runs_page(self, request: web.Request) -> web.Response:
        attention = request.query.get("attention") == "1"
        runs = find_runs(self.folders)
        states = {r.id: progress(r, runs) for r in runs}
        shown = [r for r in runs if states[r.id] == "needs attention" or not attention]
        return self._page(request, "runs.html", runs=shown, states=states, attention=attention)

    async def by_watch(self, request: web.Request) -> web.StreamResponse:
        work = request.match_info["work"]
        for run in find_runs(self.folders):
            if run.route.get("run") == work:
                raise web.HTTPFound(f"/runs/{run.id}")
        return self._page(request, "missing.html", work=work)

    async def run_page(self, request: web.Request) -> web.Response:
        runs = find_runs(self.folders)
        run = self._run(request, runs)
        parts = run.parts
        part = run.part(request.query.get("file"))
        if part is None and request.query.get("file"):
            raise web.HTTPNotFound(
                text="this run has no such error file (moved or deleted?): open the run again"
            )
        problem = None
        store = Store(part.fixes if part else run.fixes)
        q = request.query
        asked = (_int(q.get("page", "1")) - 1, q.get("error", ""), q.get("column", ""))
        try:  # read once (then cached), in a thread: not on the event loop
            grid, shown = await asyncio.to_thread(_page_of, run, part, store, *asked)
        except (BulkSyncError, OSError) as exc:  # moved, damaged, a link: say so, show the rest of the run
            grid, problem = Grid([], [], []), f"the run's error file cannot be read: {exc}"
            shown = view(grid, store, *asked)
        if problem is None and not run.error_files and run.to_handle:
            problem = (
                f"the run's error file is gone (moved or deleted?): this run had {run.to_handle} row(s) "
                f"to fix, but they cannot be shown. Look for {run.name}-*errors* in {run.folder}, "
                "or run the file again to write it anew."
            )
        return self._page(
            request,
            "run.html",
            run=run,
            parts=parts,
            part=part,
            grid=grid,
            errors=_error_types(run),
            view=shown,
            rows=shown.rows,
            order=shown.order,
            counts=store.counts(),
            sends=store.sends(),
            audit=store.audit(),
            state=progress(run, runs),
            can_send=self.inbox is not None,
            problem=problem,
        )

    async def rows_fragment(self, request: web.Request) -> web.Response:
        run = self._run(request)
        part = run.part(request.query.get("file"))
        if part is None:
            raise web.HTTPNotFound(
                text="this run has no such error file (moved or deleted?): open the run again"
            )
        q = request.query
        asked = (_int(q.get("page", "1")) - 1, q.get("error", ""), q.get("column", ""))
        grid, shown = await asyncio.to_thread(_page_of, run, part, Store(part.fixes), *asked)
        return self._page(request, "rows.html", grid=grid, rows=shown.rows, order=shown.order, view=shown)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:  # fixed names only: no path from the request reaches the disk
            raise web.HTTPNotFound()
        # the pages ask for /static/<name>?v=<its content's hash>: kept by the browser, never stale
        return web.Response(
            body=(HERE / "static" / name).read_bytes(),
            content_type=STATIC[name],
            headers={"Cache-Control": "max-age=31536000, immutable"} if "v" in request.query else {},
        )

    # -- actions -----------------------------------------------------------------------

    async def check(self, request: web.Request) -> web.Response:
        """A row as edited: checked as `validate` checks it; stored with its new version."""
        try:
            run = self._run(request)
            part = self._part(request, run)
            body = await _json(request)
            grid = await asyncio.to_thread(grid_of, run, part)
            change = change_of(body, grid)
            # the run's engine has its own event loop: it runs in a thread, as a CLI run would
            answer = await asyncio.to_thread(check, run, part, grid, change, _who(request))
        except Stale as exc:
            return _error(str(exc), 409, version=exc.version)
        except Refused as exc:
            return _error(str(exc), exc.status, **exc.more)
        except (OSError, BulkSyncError) as exc:
            return _error(f"this edit was not kept: {exc}", 403 if isinstance(exc, OutsideRoot) else 500)
        return web.json_response(answer)

    async def send(self, request: web.Request) -> web.Response:
        """The rows fixed (checked valid, not "don't send", not sent) as one new file in the inbox."""
        try:
            if self.inbox is None:
                raise Refused(
                    "this server was started without --inbox: there is nowhere to drop the fixed rows"
                )
            run = self._run(request)
            part = self._part(request, run)
            body = await _json(request)
            send_id = str(body.get("send_id") or secrets.token_hex(8))[:64]
            shown = {int(k): int(v) for k, v in dict(body.get("shown") or {}).items()}
            grid = await asyncio.to_thread(grid_of, run, part)
            sent = await asyncio.to_thread(send, run, part, grid, self.inbox, send_id, shown, _who(request))
        except Stale as exc:
            return _error(f"row {exc.index + 1}: {exc}; nothing was sent", 409, version=exc.version)
        except Refused as exc:
            return _error(str(exc), exc.status)
        except (TypeError, ValueError, AttributeError):
            return _error("the page sent a request this server cannot read: reload it", 400)
        except OSError as exc:
            return _error(f"nothing was sent: the fixed file could not be written ({exc})", 500)
        if not sent.rows:
            return _error("no row is fixed and not yet sent: a row must check valid to be sent", 400)
        return web.json_response(
            {
                "dropped": sent.file,
                "rows": sent.rows,
                "again": sent.again,
                "counts": Store(part.fixes).counts(),
            }
        )

    async def bulk(self, request: web.Request) -> web.Response:
        """Apply a value to every row with the same one in a column; queue the failed and not_sent
        rows to send again; or undo either (before Send)."""
        action = request.path.rsplit("/", 1)[1]
        try:
            run = self._run(request)
            part = self._part(request, run)
            body = await _json(request)
            grid = await asyncio.to_thread(grid_of, run, part)
            who = _who(request)
            if action == "replace":
                column, old, new = str(body["column"]), str(body["old"]), str(body["new"])
                answer = await asyncio.to_thread(bulk.replace_all, run, part, grid, column, old, new, who)
            elif action == "resend":
                answer = await asyncio.to_thread(bulk.resend, run, part, grid, who)
            else:
                answer = await asyncio.to_thread(bulk.undo, part, str(body["batch"]), who)
        except Refused as exc:
            return _error(str(exc), exc.status)
        except (KeyError, TypeError):
            return _error("the page sent a request this server cannot read: reload it", 400)
        except (OSError, BulkSyncError) as exc:
            return _error(f"nothing was changed: {exc}", 403 if isinstance(exc, OutsideRoot) else 500)
        return web.json_response(answer)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The run's report, an error file (``?file=`` names one of them; none: its first that is
        not a workbook) or workbook (found through the run, never a path asked for)."""
        run = self._run(request)
        named = run.part(request.query["file"]) if request.query.get("file") else None
        files = {"report": [run.report], "errors": [p for p in run.error_files if p.suffix != ".xlsx"],
                 "xlsx": [p for p in run.folder.glob(f"{run.name}*.xlsx") if p in run.error_files or
                          p.name in (f"{run.name}-report.xlsx", f"{run.name}.xlsx")]}  # fmt: skip
        if request.query.get("file"):
            files["errors"] = [named.path] if named else []
        found = [p for p in files.get(request.match_info["kind"], []) if is_plain_file(p)]
        if not found:
            raise web.HTTPNotFound(text="this run has no such file (moved or deleted?)")
        path = inside(found[0], run.folder)
        try:  # opened once, no link on the way: what was checked is what is sent
            body = await asyncio.to_thread(read_plain, path, run.folder)
        except OutsideRoot as exc:
            raise web.HTTPForbidden(text=f"not sent: {exc}") from None
        except OSError:
            raise web.HTTPNotFound(text="this run has no such file (moved or deleted?)") from None
        return web.Response(
            body=body,
            content_type="text/csv" if path.suffix == ".csv" else "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{quote(path.name)}"'},
        )

    async def preview_page(self, request: web.Request) -> web.Response:
        return self._page(request, "preview.html", mappings=self._mappings(), result=None, upload=None)

    async def preview_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, mapping = form.get("file"), str(form.get("mapping", ""))
        if not isinstance(upload, web.FileField) or mapping not in self._mappings():
            raise web.HTTPBadRequest(text="choose a file and one of the mappings, then press Check it")
        for old in self.uploads.iterdir():  # previewed, never dropped, an hour ago: gone
            if old.stat().st_mtime < time.time() - UPLOAD_HOURS * 3600:
                shutil.rmtree(old, ignore_errors=True)
        token = secrets.token_hex(8)
        folder = self.uploads / token
        folder.mkdir()
        name = Path(upload.filename or "upload.csv").name or "upload.csv"
        target = folder / name
        target.write_bytes(upload.file.read())
        transport = request.transport
        gone = lambda: transport is None or transport.is_closing()  # noqa: E731 - the browser left
        result = await run_preview(target, str(self._mappings()[mapping]), self.limits, gone, self.children)
        if "error" in result:  # nothing to drop: the upload goes now, not at the server's stop
            shutil.rmtree(folder, ignore_errors=True)
        return self._page(
            request, "preview.html", mappings=self._mappings(), result=result, upload=token, name=name
        )

    async def preview_drop(self, request: web.Request) -> web.Response:
        token = request.match_info["upload"]
        if self.inbox is None or not token.isalnum():
            raise web.HTTPBadRequest(text="no --inbox, or no such upload")
        folder = self.uploads / token
        files = list(folder.glob("*")) if is_plain_dir(folder) else []
        if len(files) != 1:
            raise web.HTTPNotFound(text="no such upload: it was dropped already, or the server restarted")
        body = files[0].read_bytes()
        try:  # a new file, never over one (or through a link) already there
            target = create_new(self.inbox, files[0].name, lambda fh: _put(fh, body))
        except FileExistsError:
            target = create_new(
                self.inbox, f"{files[0].stem}-{token}{files[0].suffix}", lambda fh: _put(fh, body)
            )
        shutil.rmtree(folder, ignore_errors=True)
        return self._page(request, "dropped.html", name=target.name)

    def _mappings(self) -> dict[str, Path]:
        if self.mappings is None or not self.mappings.is_dir():
            return {}
        return {p.name: p for p in sorted(self.mappings.glob("*.yaml"))}


@functools.cache
def static_version() -> str:
    """A hash of the static files, in their addresses (a new version is a new address)."""
    digest = hashlib.sha256()
    for name in sorted(STATIC):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def templates() -> jinja2.Environment:
    """The pages' templates, compiled once per process, when the first server starts (not when its
    first page is asked for: a run page's first open would take that time too)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["said"] = said
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


def _page_of(
    run: Run, part: Part | None, store: Store, page: int, error: str, column: str
) -> tuple[Grid, View]:
    """The grid (its cells perhaps still being read) and the page of it asked for."""
    grid = grid_of(run, part, whole=False)
    return grid, view(grid, store, page, error, column)


def _put(fh: Any, body: bytes) -> None:
    fh.write(body)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise Refused("the page sent a request this server cannot read: reload it") from None
    if not isinstance(body, dict):
        raise Refused("the page sent a request this server cannot read: reload it")
    return body


def _error(message: str, status: int, **more: Any) -> web.Response:
    return web.json_response({"error": message, **more}, status=status)


def _who(request: web.Request) -> str:
    """The name the person gave once in this browser (sent by the script with each action)."""
    name = unquote(request.headers.get("X-Reviewer", "")).strip()
    name = "".join(c for c in name if c.isprintable())[:80]
    return name or NO_NAME


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(text="the page number must be a number, e.g. ?page=3") from None


def _error_types(run: Run) -> list[tuple[str, int]]:
    found = run.summary.get("error_types") or {}
    return sorted(((str(k), int(v)) for k, v in found.items()), key=lambda kv: -kv[1])
