"""Pipeline, known: what the state file already holds for a chunk's rows: the rows whose source
fingerprint is the one kept with their last synced payload (unchanged without being mapped), and
the payload hashes of the rest (one query a chunk each).
"""

from __future__ import annotations

from collections.abc import Container

from .. import mapping, payload
from ..load import Chunk
from ..state import StateStore


def unchanged_by_source(
    bound: mapping.BoundMapping,
    chunk: Chunk,
    sources: list[bytes] | None,
    store: StateStore | None,
    superseded: Container[int],
) -> list[str | None] | None:
    """The externalId of each row whose source fingerprint is the one kept with its last
    synced payload (None for the others); None when there is none.

    Such a row maps to exactly the payload SIRO acknowledged, so it is unchanged without being
    mapped. Rows a later row supersedes, and rows read with a problem, are left to the full way.
    """
    if store is None or sources is None:
        return None
    ids = mapping.external_ids(bound, chunk)
    problems = chunk.problems
    asked: list[int] = []
    pairs: list[tuple[str, bytes]] = []
    for i, (ext, number) in enumerate(zip(ids, chunk.row_numbers, strict=True)):
        if ext is not None and number not in superseded and number not in problems:
            asked.append(i)
            pairs.append((ext, sources[i]))
    same = store.same_sources(pairs)
    if not any(same):
        return None
    quick: list[str | None] = [None] * len(ids)
    for i, hit in zip(asked, same, strict=True):
        if hit:
            quick[i] = ids[i]
    return quick


def known_hashes(
    mc: mapping.MappedChunk, cc: payload.CheckedChunk, store: StateStore | None
) -> dict[str, tuple[bytes, bytes | None]]:
    """What the state file holds for the chunk's valid rows (one query a chunk)."""
    if store is None:
        return {}
    ids = mc.column("externalId")
    assert ids is not None
    return store.hashes([ids[i] for i, ok in enumerate(cc.ok) if ok])
