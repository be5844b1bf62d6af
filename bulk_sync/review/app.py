"""Review, app: the pages and their few actions, on aiohttp, rendered by Jinja2 (autoescaped) with a
little plain JavaScript for editing cells and paging. Security, in one place (the middleware):

* every request carries the key printed at start (``?key=`` once, then an HttpOnly, SameSite=Strict
  cookie); a request without it gets 403;
* the Host header must name this server (no DNS rebinding from a web page);
* every POST carries the CSRF token of the page it came from (``X-CSRF-Token`` or a form field):
  an HMAC of the key, never the key itself;
* files are reached only through runs found in the inbox and report folders (ids, never paths),
  static files only by their fixed names; uploads are capped (``client_max_size``);
* the page never holds the SIRO token: the server has none (fixed rows go to the inbox, and the
  watcher sends them).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from ..errors import BulkSyncError
from ..report import STATUSES, TO_FIX, RowResult
from .check import check_rows, drop_fixed, dry_run
from .runs import Grid, Run, find_runs, grid_of

PAGE_ROWS = 100
COOKIE = "bulk_sync_review"
HERE = Path(__file__).parent
STATIC = {"review.js": "application/javascript", "review.css": "text/css"}
# scripts only from this server; inline style attributes (the status bars' widths) allowed
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'"


class Review:
    """The review server's state: where runs are, the key, the templates."""

    def __init__(
        self,
        inbox: Path | None,
        reports: list[Path],
        mappings: Path | None,
        *,
        key: str | None = None,
        hosts: set[str] | None = None,
        max_upload_mb: float = 50.0,
    ) -> None:
        self.inbox = inbox.resolve() if inbox else None
        self.folders = [inbox / "done", inbox / "failed"] if inbox else []
        self.folders += [p.resolve() for p in reports]
        self.mappings = mappings
        self.key = key or secrets.token_urlsafe(24)
        self.csrf = hmac.new(self.key.encode(), b"csrf", hashlib.sha256).hexdigest()
        self.hosts = hosts or set()  # host:port values the Host header may name (set at start)
        self.max_upload = int(max_upload_mb * 1024 * 1024)
        self.uploads = Path(tempfile.mkdtemp(prefix="bulk_sync-uploads-"))  # previews live here
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    # -- the application -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=self.max_upload)
        r = app.router
        r.add_get("/", self.runs_page)
        r.add_get("/runs/by-watch/{work}", self.by_watch)
        r.add_get("/runs/{id}", self.run_page)
        r.add_get("/runs/{id}/rows", self.rows_fragment)
        r.add_post("/runs/{id}/check", self.check)
        r.add_post("/runs/{id}/send", self.send)
        r.add_get("/preview", self.preview_page)
        r.add_post("/preview", self.preview_upload)
        r.add_post("/preview/{upload}/drop", self.preview_drop)
        r.add_get("/static/{name}", self.static)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, app: web.Application) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.hosts and request.host not in self.hosts:
            return web.Response(status=403, text="403: this server answers only to its own address")
        key = request.query.get("key")
        if key is not None and hmac.compare_digest(key, self.key):
            clean = request.rel_url.with_query({k: v for k, v in request.query.items() if k != "key"})
            found = web.Response(status=302, headers={"Location": str(clean)})
            found.set_cookie(COOKIE, self.key, httponly=True, samesite="Strict", path="/")
            return found
        if not hmac.compare_digest(request.cookies.get(COOKIE, ""), self.key):
            return web.Response(
                status=403, text="403: open the address `bulk-sync serve` printed (it holds the key)"
            )
        if request.method == "POST":
            token = request.headers.get("X-CSRF-Token", "")
            if not token and request.content_type in (
                "multipart/form-data",
                "application/x-www-form-urlencoded",
            ):
                token = str((await request.post()).get("csrf", ""))
            if not hmac.compare_digest(token, self.csrf):
                return web.Response(status=403, text="403: the form is stale or from another site (CSRF)")
        resp: web.StreamResponse = await handler(request)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp

    def _page(self, template: str, **context: Any) -> web.Response:
        html = self.env.get_template(template).render(csrf=self.csrf, statuses=STATUSES, **context)
        return web.Response(text=html, content_type="text/html")

    def _run(self, request: web.Request) -> Run:
        wanted = request.match_info["id"]
        for run in find_runs(self.folders):
            if run.id == wanted:
                return run
        raise web.HTTPNotFound(text="no such run")

    # -- pages ---------------------------------------------------------------------

    async def runs_page(self, request: web.Request) -> web.Response:
        attention = request.query.get("attention") == "1"
        runs = [r for r in find_runs(self.folders) if r.needs_attention or not attention]
        return self._page("runs.html", runs=runs, attention=attention)

    async def by_watch(self, request: web.Request) -> web.StreamResponse:
        work = request.match_info["work"]
        for run in find_runs(self.folders):
            if run.route.get("run") == work:
                raise web.HTTPFound(f"/runs/{run.id}")
        return self._page("missing.html", work=work)

    async def run_page(self, request: web.Request) -> web.Response:
        run = self._run(request)
        problem = None
        try:
            grid = await asyncio.to_thread(grid_of, run)  # read once (then cached): not on the event loop
        except (BulkSyncError, OSError) as exc:  # moved, damaged: say so, show the rest of the run
            grid, problem = Grid([], [], []), f"the run's error file cannot be read: {exc}"
        fixes = _fixes(run)
        errors = _error_types(run)
        pages = max(1, -(-len(grid.rows) // PAGE_ROWS))
        return self._page(
            "run.html",
            run=run,
            grid=grid,
            errors=errors,
            pages=pages,
            rows=_page_rows(grid, fixes, 0),
            page=0,
            page_rows=PAGE_ROWS,
            fixed=sum(1 for f in fixes.values() if f.get("status") == "valid" and not f.get("skip")),
            problem=problem,
        )

    async def rows_fragment(self, request: web.Request) -> web.Response:
        run = self._run(request)
        grid = grid_of(run)
        try:
            page = max(0, int(request.query.get("page", "0")))
        except ValueError:
            raise web.HTTPBadRequest(text="page must be a number") from None
        return self._page("rows.html", grid=grid, rows=_page_rows(grid, _fixes(run), page), page=page)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:  # fixed names only: no path from the request reaches the disk
            raise web.HTTPNotFound()
        return web.Response(body=(HERE / "static" / name).read_bytes(), content_type=STATIC[name])

    # -- actions -----------------------------------------------------------------------

    async def check(self, request: web.Request) -> web.Response:
        """A row as edited: checked as `validate` checks it; kept in the run's fixes."""
        run = self._run(request)
        body = await request.json()
        grid = grid_of(run)
        index = int(body["index"])
        if not 0 <= index < len(grid.rows) or not run.mapping:
            raise web.HTTPBadRequest(text="no such row, or the run names no mapping")
        cells = [str(c) for c in body["cells"]][: len(grid.headers)]
        fixes = _fixes(run)
        if body.get("skip"):
            fixes[str(index)] = {**fixes.get(str(index), {}), "skip": True}
            _save(run, fixes)
            return web.json_response({"skip": True})
        # the run's engine has its own event loop: it runs in a thread, as a CLI run would
        (checked,) = await asyncio.to_thread(check_rows, grid.headers, [cells], run.mapping)
        fixes[str(index)] = {"cells": cells, "status": checked.status, "skip": False}
        _save(run, fixes)
        return web.json_response(asdict(checked))

    async def send(self, request: web.Request) -> web.Response:
        """The rows fixed (checked valid, not marked "don't send") as a new file in the inbox."""
        run = self._run(request)
        if self.inbox is None:
            raise web.HTTPBadRequest(text="no --inbox: nowhere to drop the fixed rows")
        grid = grid_of(run)
        fixes = _fixes(run)
        rows = [f["cells"] for i, f in sorted(fixes.items(), key=lambda kv: int(kv[0]))
                if f.get("status") == "valid" and not f.get("skip") and "cells" in f]  # fmt: skip
        if not rows:
            return web.json_response(
                {"error": "no row is fixed yet (a row must check valid to be sent)"}, status=400
            )
        original = Path(str(run.route.get("original") or run.file))
        folder = original.parent.as_posix() if run.route else ""
        path = drop_fixed(self.inbox, folder, original.stem, grid.headers, rows)
        return web.json_response({"dropped": str(path.relative_to(self.inbox)), "rows": len(rows)})

    async def preview_page(self, request: web.Request) -> web.Response:
        return self._page("preview.html", mappings=self._mappings(), result=None, upload=None)

    async def preview_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, mapping = form.get("file"), str(form.get("mapping", ""))
        if not isinstance(upload, web.FileField) or mapping not in self._mappings():
            raise web.HTTPBadRequest(text="choose a file and one of the mappings")
        token = secrets.token_hex(8)
        folder = self.uploads / token
        folder.mkdir()
        name = Path(upload.filename or "upload.csv").name or "upload.csv"
        target = folder / name
        target.write_bytes(upload.file.read())
        result = await asyncio.to_thread(_preview, target, str(self._mappings()[mapping]))
        return self._page("preview.html", mappings=self._mappings(), result=result, upload=token, name=name)

    async def preview_drop(self, request: web.Request) -> web.Response:
        token = request.match_info["upload"]
        if self.inbox is None or not token.isalnum():
            raise web.HTTPBadRequest(text="no --inbox, or no such upload")
        files = list((self.uploads / token).glob("*")) if (self.uploads / token).is_dir() else []
        if len(files) != 1:
            raise web.HTTPNotFound(text="no such upload")
        target = self.inbox / files[0].name
        if target.exists():
            target = self.inbox / f"{files[0].stem}-{token}{files[0].suffix}"
        part = target.with_name(target.name + ".part")
        shutil.move(str(files[0]), part)
        part.replace(target)
        return self._page("dropped.html", name=target.name)

    def _mappings(self) -> dict[str, Path]:
        if self.mappings is None or not self.mappings.is_dir():
            return {}
        return {p.name: p for p in sorted(self.mappings.glob("*.yaml"))}


def _fixes(run: Run) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(run.fixes.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data.get("rows", {}))


def _save(run: Run, fixes: dict[str, dict[str, Any]]) -> None:
    part = run.fixes.with_name(run.fixes.name + ".part")
    part.write_text(json.dumps({"rows": fixes}, ensure_ascii=False), encoding="utf-8")
    part.replace(run.fixes)


def _page_rows(grid: Grid, fixes: dict[str, dict[str, Any]], page: int) -> list[dict[str, Any]]:
    """One page of the grid: each row's cells (as fixed, when they were), its problem, its state."""
    out = []
    for i in range(page * PAGE_ROWS, min(len(grid.rows), (page + 1) * PAGE_ROWS)):
        fix = fixes.get(str(i), {})
        problem = grid.problems[i]
        bad = (
            {c.strip() for c in problem.get("column", "").split(";")}
            if fix.get("status") != "valid"
            else set()
        )
        out.append(
            {
                "index": i,
                "cells": fix.get("cells", grid.rows[i]),
                "bad": bad,
                "problem": problem,
                "status": fix.get("status", problem.get("status", "")),
                "skip": bool(fix.get("skip")),
            }
        )
    return out


def _error_types(run: Run) -> list[tuple[str, int]]:
    found = run.summary.get("error_types") or {}
    return sorted(((str(k), int(v)) for k, v in found.items()), key=lambda kv: -kv[1])


def _preview(path: Path, mapping: str) -> dict[str, Any]:
    """The dry run of an uploaded file: counts, the first problems, the first payloads."""
    counts: dict[str, int] = {}
    problems: list[dict[str, Any]] = []

    def emit(one: RowResult) -> None:
        counts[one.status] = counts.get(one.status, 0) + 1
        if one.status in TO_FIX and len(problems) < 50:
            problems.append({"row": one.row_number, "column": one.column, "message": one.message})

    try:
        bodies = dry_run(path, mapping, emit, show=3)
    except BulkSyncError as exc:
        return {"error": str(exc)}
    return {"counts": counts, "problems": problems, "payloads": [json.dumps(b, indent=2) for b in bodies]}
