"""Regular expressions from mapping files (``extract``, ``skip ... matches``, ``stop_at``), run by
RE2 (google-re2): matching takes time linear in the cell's length, whatever the pattern, so a
pattern such as ``(a+)+$`` cannot hang a run (Python's ``re`` backtracks, cannot be interrupted by a
signal, and can take years on a 41-character cell). RE2 has no backreferences (``\\1``) and no
lookarounds (``(?=...)``, ``(?<=...)``): a mapping that uses them is refused when it loads.

Internal patterns (fixed, written for bulk_sync) stay with ``re``.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is reported once, by the mapping loader


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (``search``, ``fullmatch``, ``groups`` as with ``re``). Raises ValueError
    with RE2's reason when the pattern is not valid for it."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(str(reason)) from None


def problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used (None when it can)."""
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        return (
            f"not a pattern bulk_sync can run ({exc}); patterns are matched in linear time (RE2): no "
            "backreferences such as \\1 and no lookarounds such as (?=...)"
        )
    return None
