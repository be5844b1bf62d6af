"""CLI, values: the types that check a flag's value (argparse ``type=``), each saying what it wants."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import UsageError


def delimiter_flag(text: str | None) -> str | None:
    """`--delimiter` as typed in a shell: `\\t` or `tab` mean a tab."""
    if text is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1:
        raise UsageError(f"--delimiter must be one character (or tab, comma, semicolon, pipe), got {text!r}")
    return value


def batch_size(text: str) -> str | int:
    """`--batch-size`: `auto` (learn the largest size SIRO takes in time) or a fixed number."""
    if text.strip().lower() == "auto":
        return "auto"
    return int(_typed(text, int, lambda v: 0 < v <= 10_000, "`auto` or a whole number from 1 to 10000"))


def pos_int(text: str) -> int:
    return int(_typed(text, int, lambda v: v > 0, "a whole number above 0"))


def nonneg_int(text: str) -> int:
    return int(_typed(text, int, lambda v: v >= 0, "a whole number, 0 or more"))


def pos_float(text: str) -> float:
    return float(_typed(text, float, lambda v: v > 0, "a number above 0"))


def nonneg_float(text: str) -> float:
    return float(_typed(text, float, lambda v: v >= 0, "a number, 0 or more"))


def fraction(text: str) -> float:
    return float(_typed(text, float, lambda v: 0 <= v <= 1, "a fraction between 0 and 1"))


def _typed(text: str, kind: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value
