"""Map stage, identity: who a row is: its externalId (hashed a column at a time for the superseded
pass) and its source fingerprint (unchanged rows are known without being mapped).
"""

from __future__ import annotations

import importlib.metadata
import zoneinfo
from collections.abc import Sequence
from hashlib import blake2b
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..load import Chunk
from .binding import BoundMapping, skip_reasons
from .records import field_values
from .spec import MappingSpec


def external_ids(bound: BoundMapping, chunk: Chunk) -> list[str | None]:
    """Only the externalId of each row (None when it has none, or a skip rule drops the row):
    the cheap pre-pass that finds repeated ids before anything is sent."""
    chunk = bound.complete(chunk)
    frame = chunk.frame
    f = next(f for f in bound.spec.fields if f.target == "externalId")
    values, _ = field_values(f, bound, chunk)
    if not bound.spec.skip:
        return [v if type(v) is str else None for v in values]
    skips = skip_reasons(bound, frame)
    return [v if type(v) is str and skip is None else None for v, skip in zip(values, skips, strict=True)]


def fingerprints(bound: BoundMapping, chunk: Chunk) -> list[bytes]:
    """A 128-bit fingerprint (keyed BLAKE2b) per row of everything its payload is made from: the
    cells the mapping reads, the mapping, and the code that converts them.

    Conversions depend on nothing else (no row number, file name or clock), so two rows with equal
    fingerprints map to the same payload: the state keeps the fingerprint of each synced record,
    and a rerun finds unchanged rows without mapping and encoding them.
    """
    key = bound.memos.fingerprint_key
    if key is None:
        key = bound.memos.fingerprint_key = _fingerprint_key(bound.spec)
    frame = bound.complete(chunk).frame
    cols = [frame[bound.columns[c]].tolist() for c in bound.spec.columns]
    sep, seps = "\x1f", len(cols) - 1
    out: list[bytes] = []
    for cells in zip(*cols, strict=True):
        try:
            text = sep.join(cells)
        except TypeError:  # not text (never from load, which gives str cells): say what it is
            text = repr(cells)
        if text.count(sep) != seps:  # a cell holds the separator: keep cells apart another way
            text = repr(cells)
        out.append(blake2b(text.encode(errors="surrogatepass"), digest_size=16, key=key).digest())
    return out


def _fingerprint_key(spec: MappingSpec) -> bytes:
    """What a row's fingerprint is keyed with: the compiled mapping (not where its file is) and
    the source of the modules that turn cells into payloads (a new bulk_sync makes new keys)."""
    h = blake2b(digest_size=32, person=b"bulk_sync-rows-1")
    h.update(repr((spec.fields, spec.skip, spec.fills, spec.columns)).encode())
    h.update(_zone_data_version().encode())
    here = Path(__file__).parent  # this stage's parts, the payload stage and SIRO's schema
    stages = (*sorted(here.glob("*.py")), *sorted((here.parent / "payload").glob("*.py")))
    for path in (*stages, here.parent / "siro-openapi.yaml"):
        try:
            h.update(path.read_bytes())
        except OSError:
            from .. import __version__

            h.update(__version__.encode())
    return h.digest()


def _zone_data_version() -> str:
    """The version of the time-zone database zoneinfo reads (a new one may move future offsets):
    the OS's (``tzdata.zi`` names it), else the tzdata package's."""
    for base in zoneinfo.TZPATH:
        try:
            with open(Path(base) / "tzdata.zi", encoding="utf-8") as fh:
                return fh.readline().strip()
        except OSError:
            continue
    try:
        return "tzdata " + importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return ""


_ID_KEYS = ("bulk_sync-ids-k1", "bulk_sync-ids-k2")  # two 16-byte SipHash keys: 128 bits an id


def id_digests(ids: Sequence[str | None]) -> Any:
    """A 128-bit digest per id (two 64-bit keyed SipHashes, a column at a time), as an (n, 2)
    uint64 array: for finding repeated ids among millions without keeping the ids."""
    values = np.array(ids, dtype=object)
    return np.stack([pd.util.hash_array(values, hash_key=k, categorize=False) for k in _ID_KEYS], axis=1)


def id_columns(bound: BoundMapping) -> list[str]:
    """The file's headers that :func:`external_ids` reads."""
    f = next(f for f in bound.spec.fields if f.target == "externalId")
    cols = [f.column] if f.column is not None else list(f.spec.template_columns)
    dts = f.spec.datetime
    if dts is not None and dts.timezone_column:
        cols.append(dts.timezone_column)
    cols += [r.column for r in bound.spec.skip]
    return [
        bound.columns[c] for c in dict.fromkeys(c for c in cols if c is not None) if c not in bound.absent
    ]
