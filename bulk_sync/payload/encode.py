"""Payload stage, encode: a valid body's JSON straight from the columns: one template per shape (which
fields a row fills), byte for byte what pydantic-core writes.
"""

from __future__ import annotations

import json
import re
from itertools import cycle
from json.encoder import encode_basestring
from typing import Any

from pydantic_core import to_json

from ..mapping import OMIT, MappedChunk, TargetKind
from .models import MODELS, SyncUserInput, child_model


def fragments(col: list[Any], kind: TargetKind) -> list[str | None]:
    """Each value's JSON text (None where nothing is sent), as pydantic-core writes it."""
    o = OMIT
    if kind.kind == "people":  # the users' objects, joined: the list's brackets are the template's
        return [None if v is o else ",".join(_person_json(p) for p in v) for v in col]
    if kind.kind in ("string", "enum"):
        esc = encode_basestring
        return [
            None if v is o else esc(v) if type(v) is str else "null" if v is None
            else ",".join(esc(e) for e in v) if type(v) is tuple else _scalar_json(v)
            for v in col
        ]  # fmt: skip
    memo: dict[Any, str | None] = {}
    out: list[str | None] = []
    for v in col:
        if v is o:
            out.append(None)
            continue
        key = (type(v), v)
        text = memo.get(key)
        if text is None:
            text = memo[key] = _scalar_json(float(v) if kind.kind == "number" and v is not None else v)
        out.append(text)
    return out


_PERSON_KEYS = [k for k in SyncUserInput.model_fields if k in ("externalId", "email", "name")]


def _person_json(person: dict[str, str]) -> str:
    """One engagement user as pydantic writes it: the model's field order."""
    return "{" + ",".join(f'"{k}":{encode_basestring(person[k])}' for k in _PERSON_KEYS if k in person) + "}"


def _scalar_json(v: Any) -> str:
    return to_json(v).decode()


_MARK = re.compile("\x00([0-9]+)\x01")


MAX_TEMPLATES = 4096  # shapes remembered (a template is a few hundred bytes to a few kB)


def shape_template(mc: MappedChunk, present: tuple[bool, ...]) -> list[str | int]:
    """The body of a row that fills the fields ``present``, as literal texts and field indices.

    Made once per shape: the body is written with a marker where each field's value goes, then cut
    at the markers.
    """
    cache = mc.bound.memos.templates
    found = cache.get(present)
    if found is None:
        if len(cache) >= MAX_TEMPLATES:  # every shape its own: start over (bounds memory)
            cache.clear()
        filled = {tuple(prefix[:-1]): parts for prefix, parts in mc.bound.spec.fills}
        marked = _marked(mc.bound.plan.root, MODELS[mc.bound.spec.resource], (), (), present, filled) or "{}"
        parts = _MARK.split(marked)  # text, index, text, index, ..., text
        found = cache[present] = [
            int(part) if odd else part for odd, part in zip(cycle((False, True)), parts) if odd or part
        ]
    return found


def _marked(
    node: Any,
    model: Any,
    path: tuple[Any, ...],
    fill: tuple[str, ...],
    present: tuple[bool, ...],
    filled: dict[tuple[Any, ...], tuple[str, ...]],
) -> str | None:
    """The JSON of ``node`` with a marker for each present field (None when nothing is sent): keys
    in the models' field order, empty objects and lists left out, address parts filled with ""
    (as :func:`~bulk_sync.mapping` does for the dict it validates)."""
    if node.kind == "leaf":
        return f"\x00{node.column}\x01" if present[node.column] else None
    if node.kind == "list":
        entries = [
            _marked(child, model, path, filled.get(path, ()) if child.kind == "obj" else (), present, filled)
            for _, child in node.children
        ]
        sent = [e for e in entries if e is not None]
        return "[" + ",".join(sent) + "]" if sent else None
    order = list(model.model_fields)
    kids = sorted(node.children, key=lambda kc: order.index(kc[0]))
    values = {
        key: _marked(child, child_model(model, key), (*path, key), (), present, filled) for key, child in kids
    }
    if fill:  # an address: once any part has a value, every required part is sent ("" if empty)
        keys = order if any(v is not None for v in values.values()) else []
        texts = [values.get(key) or ('""' if key in fill else None) for key in keys]
    else:
        keys = [key for key, _ in kids]
        texts = [values[key] for key in keys]
    parts = [json.dumps(key) + ":" + text for key, text in zip(keys, texts, strict=True) if text is not None]
    return "{" + ",".join(parts) + "}" if parts else None
