"""Pipeline, plan: everything checked before a byte is sent: the mapping, every file opened and bound
(prepare), a retry's rows from its report (prepare_retry), the state lock, and how large a body may
grow.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import mapping, payload
from ..errors import RowError, SourceError
from ..load import Chunk, Source, open_sources
from ..mapping import BoundMapping, MappingSpec
from ..notes import Place
from ..report import (
    GOOD,
    read_report,
)
from ..settings import RunSettings
from ..state import StateLock, StateStore, target_for
from .reps import RepCheck

log = logging.getLogger("bulk_sync.pipeline")  # one logger for the stage, whichever part logs


@dataclass(frozen=True)
class Plan:
    """Everything checked before sending: the mapping and each file bound to it."""

    spec: MappingSpec
    jobs: tuple[tuple[Source, BoundMapping], ...]
    only_rows: dict[tuple[str, str | None], frozenset[int]] | None = None  # `retry`: these rows only
    superseded: dict[Place, Place] | None = None  # a row -> the later one sent instead (scan_columns)
    reps: RepCheck | None = None  # SIRO's users, when fetched: each row's rep is checked against them
    reps_note: str | None = None  # how the reps were checked, or why not (for the forecast)
    # files read in two halves by the id pass (job -> the second half's byte offset and the number
    # of its first record): a dry run's main pass may split them there too
    splits: dict[int, tuple[int, int]] | None = None

    @property
    def warnings(self) -> list[str]:
        return [f"{src.label}: {w}" for src, bound in self.jobs for w in (*src.warnings, *bound.warnings)]


def prepare(
    files: list[str | Path],
    mapping_path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Plan:
    """Load the mapping and open every file (every chosen sheet of a workbook). Raises
    ConfigError (nothing sent) on any problem."""
    spec = mapping.load_mapping(mapping_path, payload.target_catalog)
    jobs = []
    for f in files:
        for src in _open(spec, f, sheet, encoding, delimiter):
            jobs.append((src, mapping.bind(spec, src.headers, src.label)))
    return Plan(spec, tuple(jobs))


def check_mapping(mapping_path: str | Path) -> None:
    """Load a mapping file as a run would (raises MappingError listing its problems), reading no data."""
    mapping.load_mapping(mapping_path, payload.target_catalog)


def _open(
    spec: MappingSpec, file: str | Path, sheet: str | None, encoding: str | None, delimiter: str | None
) -> list[Source]:
    return open_sources(
        file,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=spec.header_row,
        expected=spec.columns,
        sheets=spec.sheets,
        id_columns=spec.id_columns,
        stop_at=spec.stop_at,
    )


@contextlib.contextmanager
def state_lock(settings: RunSettings, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the state file's lock for a run (ConfigError if another run holds it)."""
    if settings.state_path is None or settings.dry_run:
        yield
        return
    lock = StateLock(settings.state_path)
    lock.acquire(wait_seconds)
    try:
        with StateStore(settings.state_path, target_for(settings)) as store:
            store.check()  # a damaged file is refused here, before anything is sent
        yield
    finally:
        lock.release()


def prepare_retry(
    report_path: str | Path,
    mapping_path: str | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Plan | None:
    """A plan that re-reads, from their original files, exactly the rows an earlier report did not
    sync (invalid ones included: the file may have been fixed since). None when there are none."""
    try:
        rows = read_report(report_path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(str(report_path), f"cannot read the report: {exc}") from exc
    if rows and not {"source_file", "sheet", "row_number", "status"} <= set(rows[0]):
        raise SourceError(
            str(report_path), "is not a bulk-sync report (no source_file/row_number/status columns)"
        )
    wanted: dict[tuple[str, str | None], set[int]] = {}
    for r in rows:
        if r["status"] not in GOOD:
            wanted.setdefault((r["source_file"], r["sheet"] or None), set()).add(int(r["row_number"]))
    if not wanted:
        return None
    spec = mapping.load_mapping(mapping_path, payload.target_catalog)
    jobs = []
    only: dict[tuple[str, str | None], frozenset[int]] = {}
    for (file, sheet), numbers in wanted.items():
        for src in _open(spec, file, sheet, encoding, delimiter):
            jobs.append((src, mapping.bind(spec, src.headers, src.label)))
            only[(str(src.path), src.sheet)] = frozenset(numbers)
    return Plan(spec, tuple(jobs), only)


def too_large(size: int, limit: int) -> RowError | None:
    """A record whose JSON alone is larger than a request body may be: never sendable."""
    if size + 2 <= limit:  # a batch of one adds its brackets
        return None
    return RowError(
        "too-large",
        f"the record is {size:,} bytes as JSON, more than the {limit:,} a request may carry "
        "(--max-body-bytes); shorten its longest cells",
    )


def file_size(src: Source) -> int:
    try:
        return src.size  # as it was opened: nothing past it is read
    except OSError:
        return 1 << 40


def may_be_too_large(
    bound: mapping.BoundMapping, raw: dict[str, list[str]], chunk: Chunk, limit: int
) -> bool:
    """Could a row of the chunk be larger than ``limit`` as JSON? A bound from the longest cell of
    each column a text field reads (JSON escaping at most multiplies a text by 6), a generous fixed
    size for the others (numbers, date-times, enum values), and the keys; so that a dry run encodes
    bodies only for a chunk that might hold a huge record. The longest cell is first bounded by the
    longest run of BLOCK cells joined (one ``str.join`` a block: about a third of the time of
    ``len`` on every cell), and measured cell by cell only when that bound is not small enough."""
    return _bound(bound, raw, chunk, _block_total) > limit and _bound(bound, raw, chunk, _longest) > limit


BLOCK = 512


def _block_total(cells: list[str]) -> int:
    return max((len("".join(cells[i : i + BLOCK])) for i in range(0, len(cells), BLOCK)), default=0)


def _longest(cells: list[str]) -> int:
    return max(map(len, cells), default=0)


def _bound(
    bound: mapping.BoundMapping,
    raw: dict[str, list[str]],
    chunk: Chunk,
    longest_of: Callable[[list[str]], int],
) -> int:
    total = 2
    longest: dict[str, int] = {}
    for f in bound.spec.fields:
        spec = f.spec
        total += 64 + len(f.target)  # its key, quotes and punctuation
        if f.kind.kind != "string" or spec.datetime is not None:
            total += 64  # a number, boolean, enum value or date-time
            continue
        extra = [spec.value, spec.default, *(spec.map.values() if spec.map else ())]
        total += 6 * max((len(str(v)) for v in extra if v is not None), default=0) + len(spec.template or "")
        for c in [spec.column] if spec.column else spec.template_columns:
            header = bound.columns[c]
            if header not in longest:
                cells = raw.get(header)
                longest[header] = longest_of(chunk.cells(header) if cells is None else cells)
            total += 6 * longest[header]
    return total
