"""Review, runs: the runs the watcher and the CLI wrote, found from their own outputs (no second source
of truth): in an inbox's ``done/`` and ``failed/`` (``<base>-summary.json``, ``<base>-route.json``,
``<base>-report.csv``, ``<base>-report-errors.*``), and in report folders (``<name>-summary.json``
beside ``<name>.csv`` and ``<name>-errors.*``). A run is addressed by an id made from its folder
and its name; a file is only ever opened through a run found this way (no path from a request).

A run over several files writes one error file per file with rows to fix (``<name>-errors-a.csv``,
``<name>-errors-b.csv``): each is a ``Part`` of the run, with its own grid and its own edits. A
run over several sheets of a workbook writes an error workbook with a sheet each (their columns may
differ): each sheet is a ``Part`` as well (``<error file>:<sheet>``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import BulkSyncError
from ..load import Chunk, Source, open_sources, sheet_names
from ..load.held import open_bytes
from ..report import STATUSES, TO_FIX
from .safefs import OutsideRoot, inside, is_plain_dir, is_plain_file, listing, opened, read_plain

ERROR_COLUMNS = (
    "bulk_sync_row",
    "bulk_sync_status",
    "bulk_sync_error",
    "bulk_sync_column",
    "bulk_sync_message",
)


@dataclass(frozen=True)
class Part:
    """One error file of a run, or one sheet of it: its rows are one grid, its edits one store."""

    path: Path
    fixes: Path  # where the page keeps a person's edits of its rows
    source: str  # the name of the file its rows were read from
    sheet: str | None = None  # a workbook error file of several sheets: the sheet (one per input sheet)

    @property
    def name(self) -> str:
        """How a request names it (``?file=``): the error file's name, and its sheet's (a sheet's
        name cannot hold ``:`` in Excel)."""
        return self.path.name if self.sheet is None else f"{self.path.name}:{self.sheet}"

    @property
    def label(self) -> str:
        """What the page calls it: the file its rows came from, and its sheet."""
        return self.source if self.sheet is None else f"{self.source}, sheet {self.sheet}"


@dataclass
class Run:
    """One run, as its outputs describe it."""

    id: str
    folder: Path
    name: str  # the common stem of its outputs
    summary: dict[str, Any] = field(default_factory=dict)
    route: dict[str, Any] = field(default_factory=dict)  # watch runs: the original name, mapping, profile

    @property
    def report(self) -> Path:
        return self.folder / (f"{self.name}-report.csv" if self.route else f"{self.name}.csv")

    @property
    def error_files(self) -> list[Path]:
        return sorted(  # links skipped: a link in done/ must not show an outside file
            p
            for p in listing(self.folder, self._errors_stem + "*")
            if p.suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx")
        )

    @property
    def parts(self) -> list[Part]:
        """Its error files: one (``<stem>.csv``), or one per file read that had rows to fix
        (``<stem>-<file>.csv``), each with the file its rows came from and where its edits are kept."""
        files = [Path(str(f)) for f in self.summary.get("files") or []]
        parts = []
        for path in self.error_files:
            tail = path.name[len(self._errors_stem) :]
            if not tail.startswith("-"):  # the run's only error file: its rows are one file's
                part = Part(path, self.fixes, self._only_source(files))
            else:
                tail = tail[1:]  # "a.csv" for a.csv's rows (a.xlsx's: "a.xlsx")
                source = next((f.name for f in files if f.stem == Path(tail).stem), tail)
                part = Part(path, self.folder / f"{self.name}-fixes-{tail}.sqlite", source)
            parts += _sheets(part)
        return parts

    def part(self, name: str | None = None) -> Part | None:
        """The part of that name (none: the first; an error file's name alone: its first sheet);
        None when there is no such file or sheet."""
        parts = self.parts
        if not name:
            return parts[0] if parts else None
        return next((p for p in parts if p.name == name), None) or next(
            (p for p in parts if p.path.name == name), None
        )

    def _only_source(self, files: list[Path]) -> str:
        """The name of the file the rows of the run's only error file came from: its only file, or
        (a run over several files, one of which had rows to fix) the file of the report's first row
        to fix; the run's first file when the report says nothing."""
        if self.route.get("original") or len(files) < 2:
            return self.file
        key = (str(self.report), _mtime(self.report))
        if key not in _SOURCES:
            if len(_SOURCES) > 256:
                _SOURCES.clear()
            _SOURCES[key] = _first_to_fix(self.report)
        found = _SOURCES[key]
        return Path(found).name if found else self.file

    @property
    def fixes(self) -> Path:
        """Where the page keeps a person's edits of the rows of its only error file (a run over
        several files: of each, see ``parts``). The run's own files are never edited."""
        return self.folder / f"{self.name}-fixes.sqlite"

    @property
    def stores(self) -> list[Path]:
        """Where the edits of each of its error files are kept."""
        return [p.fixes for p in self.parts] or [self.fixes]

    @property
    def counts(self) -> dict[str, int]:
        found = self.summary.get("counts") or {}
        return {s: int(found.get(s, 0)) for s in STATUSES if found.get(s)}

    @property
    def to_fix(self) -> int:
        return sum(n for s, n in self.counts.items() if s in TO_FIX)

    @property
    def to_handle(self) -> int:
        """Rows its error file holds: to fix (invalid, rejected) or to send again (failed, not_sent)."""
        found = self.summary.get("counts") or {}
        return sum(int(found.get(s, 0)) for s in (*TO_FIX, "failed", "not_sent"))

    @property
    def needs_attention(self) -> bool:
        return self.exit_code not in (0, None) or self.to_fix > 0

    @property
    def exit_code(self) -> int | None:
        code = self.summary.get("exit_code")
        return int(code) if code is not None else None

    @property
    def mapping(self) -> str | None:
        found = self.summary.get("mapping") or self.route.get("mapping")  # the run's: an absolute path
        return str(found) if found else None

    @property
    def file(self) -> str:
        if self.route.get("original"):
            return str(self.route["original"])
        files = self.summary.get("files") or []
        return Path(files[0]).name if files else self.name

    @property
    def when(self) -> str:
        return str(
            self.summary.get("finished_at") or time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.mtime))
        )

    @property
    def mtime(self) -> float:
        return (self.folder / self._summary_name).stat().st_mtime

    @property
    def _summary_name(self) -> str:
        return f"{self.name}-summary.json"

    @property
    def _errors_stem(self) -> str:
        return f"{self.name}-report-errors" if self.route else f"{self.name}-errors"


# (error file, mtime) -> its sheets' names (read once: the parts are asked for at each request)
_SHEETS: dict[tuple[str, float], list[str]] = {}


def _sheets(part: Part) -> list[Part]:
    """A workbook error file of several sheets (a run over several sheets writes one a sheet): a
    part a sheet, each with its own edits (the first keeps the file's, as when only it was
    shown); a CSV, or a workbook of one sheet: the part itself."""
    if part.path.suffix.lower() != ".xlsx" or not is_plain_file(part.path):
        return [part]
    key = (str(part.path), _mtime(part.path))
    if key not in _SHEETS:
        if len(_SHEETS) > 256:
            _SHEETS.clear()
        try:
            with opened(part.path, part.path.parent) as path:
                _SHEETS[key] = sheet_names(path)
        except (BulkSyncError, OSError):  # damaged: the page says so when it reads its rows
            return [part]
    names = _SHEETS[key]
    if len(names) < 2:
        return [part]
    return [
        replace(part, sheet=name, fixes=part.fixes if n == 0 else _fixes_of_sheet(part.fixes, name))
        for n, name in enumerate(names)
    ]


def _fixes_of_sheet(fixes: Path, sheet: str) -> Path:
    return fixes.with_name(f"{fixes.stem}-sheet-{quote(sheet, safe='')}{fixes.suffix}")


# (report, mtime) -> the source file of its first row to fix (read once: a report may be large)
_SOURCES: dict[tuple[str, float], str | None] = {}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _first_to_fix(report: Path) -> str | None:
    """The ``source_file`` of the report's first row that is to fix; None when none is, or the
    report is gone, a link, or not a report."""
    if not is_plain_file(report):
        return None
    try:
        with (
            opened(report, report.parent) as path,
            io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", newline="") as fh,
        ):
            rows = csv.reader(fh)
            head = next(rows, [])
            if "source_file" not in head or "status" not in head:
                return None
            file, status = head.index("source_file"), head.index("status")
            return next((r[file] for r in rows if len(r) > status and r[status] in TO_FIX), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def run_id(folder: Path, name: str) -> str:
    return hashlib.sha256(f"{folder.resolve()}\x00{name}".encode()).hexdigest()[:16]


def find_runs(folders: list[Path]) -> list[Run]:
    """Every run in ``folders`` (an inbox's done/ and failed/, report folders), newest first; a
    folder or file that is a symbolic link is not followed."""
    runs = []
    for folder in folders:
        if not is_plain_dir(folder):
            continue
        for summary in listing(folder, "*-summary.json"):
            name = summary.name.removesuffix("-summary.json")
            try:
                data = json.loads(read_plain(summary, folder).decode("utf-8"))
            except (OSError, ValueError):
                continue
            route_file = folder / f"{name}-route.json"
            route: dict[str, Any] = {}
            if is_plain_file(route_file):
                try:
                    route = json.loads(read_plain(route_file, folder).decode("utf-8"))
                except (OSError, ValueError):
                    route = {}
            runs.append(Run(run_id(folder, name), folder, name, data, route))
    return sorted(runs, key=lambda r: r.mtime, reverse=True)


LIGHT_BYTES = 1 << 20  # an error file this large (CSV) is read for its rows' reasons first, then cells


@dataclass
class Grid:
    """The rows of a run that did not sync, from its error file: the original cells, then why.

    A grid may still be being read (see ``grid_of``): ``wait`` for the rows a page shows."""

    headers: list[str]
    rows: list[list[str]]  # original cells, one list per row
    problems: list[dict[str, str]]  # per row: row, status, error, column, message
    path: Path | None = None
    sheet: str | None = None  # of a workbook error file of several sheets: the one this grid shows
    whole: bool = True  # every row's cells are in ``rows``
    known: bool = True  # every row's problem is in ``problems`` (the count, the filters, the columns)
    failed: BaseException | None = field(default=None, repr=False)  # what reading it raised
    ready: threading.Condition = field(default_factory=threading.Condition, repr=False, compare=False)

    def wait(self, rows: int | None = None) -> Grid:
        """The grid once its first ``rows`` rows' cells are read (None: every row's); raises what
        reading it raised."""

        def there() -> bool:
            if self.failed is not None or self.whole:
                return True
            return rows is not None and self.known and len(self.rows) >= min(rows, len(self.problems))

        with self.ready:
            self.ready.wait_for(there)
            if self.failed is not None:
                raise self.failed
        return self


# (error file, mtime, sheet) -> its grid: read once (by one thread, whoever asks first), paged many times
_GRIDS: dict[tuple[str, float, str | None], Grid] = {}
_GRIDS_LOCK = threading.Lock()


def grid_of(run: Run, part: Part | None = None, *, whole: bool = True) -> Grid:
    """The rows to fix of one of the run's error files, or one sheet of it (``part``; none: its
    first), cached while the file is unchanged. With ``whole`` false it answers as soon as every
    row's problem is known, the cells still coming (a large CSV's reasons are read first, in a
    pass over 5 columns: the first page of 20,000 rows need not wait for the 20,000 rows'
    cells); ``Grid.wait`` waits for the rows it shows."""
    part = part or run.part()
    if part is None:
        return Grid([], [], [])
    path = inside(part.path, run.folder)  # no link, under its folder: checked again as it is read
    if not is_plain_file(path):
        raise OutsideRoot(f"{path.name} is a symbolic link: not followed")
    key = (str(path), path.stat().st_mtime, part.sheet)
    with _GRIDS_LOCK:
        grid = _GRIDS.get(key)
        if grid is None:
            if len(_GRIDS) > 16:
                _GRIDS.clear()
            grid = _GRIDS[key] = Grid([], [], [], path, part.sheet, whole=False, known=False)
            reader = threading.Thread(target=_read, args=(grid, key, run.folder), name=f"read {path.name}")
            reader.daemon = True
            reader.start()
    return grid.wait(None if whole else 0)


def _read(grid: Grid, key: tuple[str, float, str | None], root: Path) -> None:
    """Fill ``grid`` from its file (in a thread of its own), opened once under ``root`` (no link on
    the way) and read through that open file: the rows' problems first when the file is a large
    CSV, then the cells chunk by chunk, each chunk told to whoever waits."""
    assert grid.path is not None
    try:
        with opened(grid.path, root) as path:
            _fill(grid, path)
    except BaseException as exc:  # said to whoever waits for it; the next request reads it again
        with _GRIDS_LOCK:
            if _GRIDS.get(key) is grid:
                del _GRIDS[key]
        with grid.ready:
            grid.failed = exc
            grid.ready.notify_all()


def _fill(grid: Grid, path: Path) -> None:
    """``grid``'s headers, problems and rows, from ``path`` (a path read through its open file)."""
    names = [c.removeprefix("bulk_sync_") for c in ERROR_COLUMNS]
    # a CSV, a workbook's only sheet, or the sheet named (one: its rows are one grid)
    sources = open_sources(path) if grid.sheet is None else open_sources(path, sheet=grid.sheet)
    grid.headers = [h for h in sources[0].headers if h not in ERROR_COLUMNS]
    if sources and all(s.kind == "csv" for s in sources) and sources[0].size >= LIGHT_BYTES:
        reasons: list[dict[str, str]] = []
        for src in sources:  # only the 5 columns of why: a third of the time of the whole file
            why = [c for c in ERROR_COLUMNS if c in src.headers]
            for chunk in src.chunks(why):
                reasons.extend(_problems(chunk, src, names))
        with grid.ready:
            grid.problems, grid.known = reasons, True
            grid.ready.notify_all()
    problems: list[dict[str, str]] = []
    for src in sources:
        cut = [h for h in src.headers if h not in ERROR_COLUMNS]
        for chunk in src.chunks():  # column by column into rows, in C (zip): 20,000 rows in ms
            cells = list(map(list, zip(*[chunk.cells(h) for h in cut], strict=True)))
            problems.extend(_problems(chunk, src, names))
            with grid.ready:
                grid.rows.extend(cells)
                grid.ready.notify_all()
    with grid.ready:
        if problems != grid.problems:  # (the first pass's, if any, agree: this one is the file's)
            grid.problems = problems
        grid.known = grid.whole = True
        grid.ready.notify_all()


def _problems(chunk: Chunk, src: Source, names: list[str]) -> Iterator[dict[str, str]]:
    blank = [""] * len(chunk)
    why = zip(*[chunk.cells(c) if c in src.headers else blank for c in ERROR_COLUMNS], strict=True)
    return (dict(zip(names, p, strict=True)) for p in why)
