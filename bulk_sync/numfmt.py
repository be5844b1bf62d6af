"""Load stage, workbooks: an Excel number format -> the text a number cell shows with it.

calamine gives a cell's value, not its format; a zip typed ``02135`` is stored as the number 2135
with the format ``00000``, and a person sees (and means) ``02135``. This module reproduces the
formats that change how a number *reads*: zero padding (``00000``), literal characters
(``000-000-0000``, ``"$"0.00``), fixed decimals (``0.00``) and percent (``0.0%``), with their
positive/negative/zero sections. It never changes a number's value:

* a format that would round (``0.00`` on 41.947123) shows the value as stored, ``41.947123``:
  bulk_sync never reads a rounded number;
* thousands separators are not added (``#,##0`` shows ``1234``): grouping only makes the decimal
  mark of a text harder to read, and the value is the same;
* dates and times (calamine gives those as dates), scientific notation, fractions, conditions,
  scaling by 1,000 and the text section (``@``) are left as General.

No I/O: the loader reads the style table and the cells, and asks :func:`formatter` for each style.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

# ECMA-376 18.8.30: the built-in formats that can matter here (the others are General or dates)
BUILTIN = {
    1: "0",
    2: "0.00",
    3: "#,##0",
    4: "#,##0.00",
    9: "0%",
    10: "0.00%",
    37: "#,##0 ;(#,##0)",
    38: "#,##0 ;[Red](#,##0)",
    39: "#,##0.00;(#,##0.00)",
    40: "#,##0.00;[Red](#,##0.00)",
}
_DATE_TOKENS = re.compile(r"[yYmMdDhHsS]|AM/PM|A/P", re.IGNORECASE)
_COLOR = re.compile(r"\[(?:Black|Blue|Cyan|Green|Magenta|Red|White|Yellow|Color\s*\d+)\]", re.IGNORECASE)

Formatter = Callable[[float], str | None]


class _Section:
    """One section of a format: literal text and digit placeholders, parsed once."""

    __slots__ = ("decimals", "fraction", "integer", "percent", "prefix", "suffix")

    def __init__(self, prefix: str, integer: list[str], fraction: list[str], suffix: str, percent: bool):
        self.prefix, self.integer, self.fraction, self.suffix = prefix, integer, fraction, suffix
        self.percent = percent
        self.decimals = sum(1 for t in fraction if t in "0#?")

    def changes_text(self) -> bool:
        """True when a number can read differently from General with this section."""
        if not self.integer and not self.fraction:
            return False
        padded = sum(1 for t in self.integer if t == "0") >= 2
        literal = bool(self.prefix.strip() or self.suffix.strip()) or any(len(t) > 1 for t in self.integer)
        return padded or literal or "0" in self.fraction or self.percent

    def render(self, value: Decimal) -> str | None:
        """``value`` (not negative) as this section shows it; None when it would round."""
        if not self.integer and not self.fraction:
            return None  # only text ("-" for zero): the number itself does not show
        if self.percent:
            value = value.scaleb(2)
        shown = (
            value.quantize(Decimal(1).scaleb(-self.decimals)) if self.decimals else value.to_integral_value()
        )
        if shown != value:
            return None  # the format would round: never read a rounded number
        whole, _, frac = f"{shown:f}".partition(".")
        frac = frac.ljust(self.decimals, "0")[: self.decimals]
        # fraction placeholders: '0' keeps a trailing zero, '#' drops it, '?' shows a space
        kept = list(frac)
        for i in range(len(kept) - 1, -1, -1):
            if kept[i] != "0" or self.fraction[i] == "0":
                break
            kept[i] = " " if self.fraction[i] == "?" else ""
        frac = "".join(kept)
        text = self.prefix + _fill(whole.lstrip("0"), self.integer)
        if self.decimals:
            text += "." + frac if frac.strip() else ("." if self.fraction and self.fraction[0] == "0" else "")
        return text + self.suffix


def _fill(digits: str, placeholders: list[str]) -> str:
    """Digits into the integer placeholders, right to left; extra digits go to the first one."""
    slots = [i for i, t in enumerate(placeholders) if t in "0#?"]
    out = list(placeholders)
    rest = digits
    for n, i in enumerate(reversed(slots)):
        if n == len(slots) - 1:  # the leftmost placeholder takes every digit left
            out[i] = rest if rest else {"0": "0", "#": "", "?": " "}[placeholders[i]]
        elif rest:
            out[i], rest = rest[-1], rest[:-1]
        else:
            out[i] = {"0": "0", "#": "", "?": " "}[placeholders[i]]
    return "".join(out)


def _split_sections(code: str) -> list[str]:
    sections, current, quoted, escaped = [], "", False, False
    for ch in code:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current += ch
        elif ch == ";" and not quoted:
            sections.append(current)
            current = ""
        else:
            current += ch
    sections.append(current)
    return sections


def _literal_at(code: str, i: int) -> tuple[str, int] | None:
    """The text a quoted, escaped, spacing (``_x``) or fill (``*x``) token at ``i`` shows, and where
    the next token starts (-1: an unclosed quote); None when no such token starts at ``i``."""
    ch = code[i]
    if ch == '"':
        end = code.find('"', i + 1)
        return (code[i + 1 : end], end + 1) if end >= 0 else ("", -1)
    if ch in "\\_*" and i + 1 < len(code):
        # an escaped character; a space as wide as the next character; a fill: nothing to read
        return {"\\": code[i + 1], "_": " ", "*": ""}[ch], i + 2
    return None


def _parse_section(code: str) -> _Section | None:
    code = _COLOR.sub("", code)
    prefix, suffix = "", ""
    integer: list[str] = []
    fraction: list[str] = []
    part = "prefix"  # prefix -> integer -> fraction -> suffix
    percent = False
    i = 0
    while i < len(code):
        ch = code[i]
        literal = None
        lit = _literal_at(code, i)
        if lit is not None:
            if lit[1] < 0:
                return None  # an unclosed quote
            literal, i = lit
        elif ch in "[@/Ee":
            return None  # conditions, text, fractions, scientific
        elif ch in "0#?":
            if part in ("prefix", "integer"):
                part = "integer"
                integer.append(ch)
            elif part == "fraction":
                fraction.append(ch)
            else:
                return None  # digits after the suffix started: not a format we reproduce
            i += 1
            continue
        elif ch == ".":
            if part in ("fraction", "suffix"):
                return None
            part = "fraction"
            i += 1
            continue
        elif ch == ",":
            if part != "integer" or not any(t in "0#?" for t in code[i + 1 :]):
                return None  # a trailing comma scales by 1,000
            i += 1  # a thousands separator: not added (see the module docstring)
            continue
        elif ch == "%":
            percent = True
            literal, i = "%", i + 1
        else:
            literal, i = ch, i + 1
        if part == "prefix":
            prefix += literal
        elif part == "integer" and _digits_ahead(code[i:]):
            integer.append(literal)  # a literal between digit placeholders: 000-000-0000
        else:
            part = "suffix"
            suffix += literal
    if not integer and not fraction:
        return _Section(prefix + suffix, [], [], "", percent) if part == "prefix" else None
    if not any(t in "0#?" for t in integer):
        integer.append("#")
    return _Section(prefix, integer, fraction, suffix, percent)


def formatter(code: str) -> Formatter | None:
    """How numbers read with format ``code``; None when the format reads like General (or is a
    date, or not one this module reproduces). The formatter gives None for a value it would round."""
    if not code or code.strip().lower() == "general" or _DATE_TOKENS.search(_strip_literals(code)):
        return None
    raw = _split_sections(code)
    sections = [_parse_section(c) for c in raw[:3]]
    if any(s is None for s in sections) or len(raw) > 4:
        return None
    parsed = [s for s in sections if s is not None]
    if not any(s.changes_text() for s in parsed):
        return None
    positive = parsed[0]
    negative = parsed[1] if len(parsed) > 1 else None
    zero = parsed[2] if len(parsed) > 2 else None
    if negative is None and zero is None:
        quick = _quick(positive)
        if quick is not None:
            return quick

    def render(value: float) -> str | None:
        number = Decimal(repr(value))
        if number.is_zero() and zero is not None:
            return zero.render(abs(number))
        if number < 0:
            if negative is not None:  # the negative section shows the sign itself, e.g. (1.50)
                return negative.render(-number)
            shown = positive.render(-number)
            return None if shown is None else "-" + shown
        return positive.render(number)

    return render


def _digits_ahead(rest: str) -> bool:
    """More integer digit placeholders follow (before the decimal point)?"""
    return any(c in "0#?" for c in _strip_literals(rest).split(".")[0])


class _Padded:
    """``00000``: whole numbers padded with zeros (a fraction would be rounded away: General)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def __call__(self, value: float) -> str | None:
        return self.many(np.array([value]))[0]

    def many(self, values: Any) -> list[str | None]:
        ok = (np.trunc(values) == values) & (np.abs(values) < 1e15)
        text = np.char.zfill(np.abs(np.where(ok, values, 0)).astype(np.int64).astype(str), self.width)
        out = np.where(values < 0, np.char.add("-", text), text).astype(object)
        out[~ok] = None
        result: list[str | None] = out.tolist()
        return result


class _Fixed:
    """``0.00``, ``#,##0.00``, ``000.00``: fixed decimals (a value they would round reads as General)."""

    def __init__(self, width: int, places: int) -> None:
        self.width, self.places = width, places

    def __call__(self, value: float) -> str | None:
        return self.many(np.array([value]))[0]

    def many(self, values: Any) -> list[str | None]:
        text = np.char.mod(f"%.{self.places}f", values)
        if self.width > 1:
            text = np.char.zfill(text, self.width + 1 + self.places + (values < 0))
        ok = (text.astype(float) == values) & (np.abs(values) < 1e15)
        out = text.astype(object)
        out[~ok] = None
        result: list[str | None] = out.tolist()
        return result


def _quick(section: _Section) -> Formatter | None:
    """The same rendering for the two shapes most sheets use, a column at a time with numpy:
    zero-padded whole numbers (``00000``) and plain fixed decimals (``0.00``, ``#,##0.00``)."""
    if section.prefix or section.suffix or section.percent or any(len(t) > 1 for t in section.integer):
        return None
    width = section.integer.count("0")
    if not section.fraction and set(section.integer) <= {"0"}:
        return _Padded(width)
    if section.fraction and set(section.fraction) == {"0"} and section.integer[-1] == "0":
        return _Fixed(width, len(section.fraction))
    return None


def many(fmt: Formatter, values: Any) -> list[str | None]:
    """``fmt`` over an array of values (a column's cells of one format)."""
    vector = getattr(fmt, "many", None)
    if vector is not None:
        result: list[str | None] = vector(values)
        return result
    return [fmt(v) for v in values.tolist()]


def _strip_literals(code: str) -> str:
    return re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code)
