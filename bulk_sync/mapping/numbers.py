"""Map stage, numbers: one number cell -> its exact value: decimal arithmetic, the decimal mark (point
or comma, never guessed), grouping, currency signs and percents.
"""

from __future__ import annotations

import math
import re
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext


class CellError(ValueError):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[$€£¥₹₩₽₺₪₫]|R\$|CHF|kr)\s*|\s*(?:[A-Z]{3}|[$€£¥₹₩₽₺₪₫]|CHF|kr)$")


# The common money shape with a decimal point (12345.67, 12,345.67, $12,345.67), the short way.
_PLAIN_NUMBER = re.compile(r"\$?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _strict_pattern(mark: str) -> re.Pattern[str]:
    """A number written with decimal mark ``mark``: digits grouped by three with one kind of
    thousands separator (the other mark, a space or an apostrophe), or not grouped at all."""
    other = {".": ",", ",": "."}[mark]
    sep = f"[{re.escape(other)} ']"
    return re.compile(
        rf"(?P<int>[1-9]\d{{0,2}}(?P<sep>{sep})\d{{3}}(?:(?P=sep)\d{{3}})*|\d*)"
        rf"(?:{re.escape(mark)}(?P<frac>\d+))?(?:[eE](?P<exp>[+-]?\d+))?"
    )


_STRICT = {mark: _strict_pattern(mark) for mark in (".", ",")}


_MARK_NAMES = {".": "a decimal point", ",": "a decimal comma"}


def parse_number(
    text: str, decimal: str | None = ".", bounds: tuple[float, float] | None = None
) -> float | int:
    """'12,345.67', '$12,345.67', '1.234,56 €' (decimal ','), '(1,200)', '50%' (-> 0.5), exactly.

    ``decimal`` None: the column's decimal mark is not known, and a cell that reads as two
    different numbers ('1,500', '12.000') is an error, never a guess."""
    if decimal == "." and _PLAIN_NUMBER.fullmatch(text):  # the common shapes, the short way
        t = text.lstrip("$").replace(",", "")
        if len(t) - ("." in t) <= 15:  # a double holds 15 digits exactly: its shortest text is t's
            value = float(t)
            if bounds is None or bounds[0] <= value <= bounds[1]:
                return value if "." in t else int(value)
    return any_number(text, decimal, bounds)


def any_number(
    text: str, decimal: str | None = ".", bounds: tuple[float, float] | None = None
) -> float | int:
    """:func:`parse_number` for every shape it accepts (the reference; a test checks the short way).

    The arithmetic is decimal (``33.34%`` is 0.3334, not 0.33340000000000003); the value sent is
    the double whose shortest text is exactly the cell's number, or the cell is an error."""
    with localcontext(Emax=MAX_EMAX, Emin=MIN_EMIN):  # -1e1000000 is an error cell, not an Overflow
        return _any_number(text, decimal, bounds)


def _any_number(text: str, decimal: str | None, bounds: tuple[float, float] | None) -> float | int:
    t = text.replace("\u00a0", " ").replace("\u202f", " ").strip()
    negative = t.startswith("(") and t.endswith(")")
    if negative:
        t = t[1:-1].strip()
    t = _CURRENCY.sub("", t).strip()
    if t.startswith("-") or t.startswith("+"):
        negative ^= t[0] == "-"
        t = _CURRENCY.sub("", t[1:]).strip()
    percent = t.endswith("%")
    if percent:
        t = t[:-1].strip()
    readings = {}
    for mark in (decimal,) if decimal else (".", ","):
        m = _STRICT[mark].fullmatch(t)
        if m is not None and (m["int"] or m["frac"]):
            digits = m["int"].replace(m["sep"], "") if m["sep"] else m["int"]
            number = Decimal(f"{digits or '0'}.{m['frac'] or '0'}e{m['exp'] or '0'}")
            readings[mark] = (number, bool(m["frac"] or m["exp"]))
    if not readings:
        raise CellError("bad-number", f"{text!r} is not a number{_other_mark_hint(t, decimal)}")
    if any(n.adjusted() > 308 for n, _ in readings.values()):  # past a double's range (and said short)
        raise CellError("bad-number", f"{text!r} is not a finite number")
    if bounds is not None:
        low, high = bounds
        sign = -1 if negative else 1
        scale = Decimal("0.01") if percent else Decimal(1)
        fit = {k: v for k, v in readings.items() if low <= sign * v[0] * scale <= high}
        if not fit:
            shown = _plain(sign * next(iter(readings.values()))[0] * scale)
            raise CellError("bad-number", f"{text!r} is {shown}, outside {_range_text(bounds)}")
        readings = fit
    if len({n for n, _ in readings.values()}) > 1:
        point, comma = readings["."][0], readings[","][0]
        raise CellError(
            "ambiguous-number",
            f"{text!r} reads as {_plain(point)} with a decimal point and as {_plain(comma)} with a "
            "decimal comma, "
            'and nothing in the column says which: set `decimal: "."` or `decimal: ","` for this field '
            "in the mapping",
        )
    value, fraction = next(iter(readings.values()))
    if negative:
        value = -value
    if percent:
        value, fraction = value.scaleb(-2), True
    return _exact(value, fraction, text)


def _range_text(bounds: tuple[float, float]) -> str:
    if bounds == (0.0, 1.0):
        return "0 to 1 (a share is a fraction: 0.5 or 50% is half)"
    return f"{bounds[0]:g} to {bounds[1]:g}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _other_mark_hint(core: str, decimal: str | None) -> str:
    if decimal is None:
        return ""
    other = "," if decimal == "." else "."
    m = _STRICT[other].fullmatch(core)
    if m is None or not (m["int"] or m["frac"]):
        return ""
    return (
        f" with {_MARK_NAMES[decimal]} (the mark this column uses); it reads as a number with "
        f"{_MARK_NAMES[other]}: check the cell, or the field's `decimal:` in the mapping"
    )


def _exact(value: Decimal, fraction: bool, text: str) -> float | int:
    """``value`` as the JSON number sent, which must be exactly ``value`` (SIRO keeps doubles)."""
    as_float = float(value)
    if not math.isfinite(as_float):
        raise CellError("bad-number", f"{text!r} is not a finite number")
    if Decimal(repr(as_float)) != value:
        raise CellError(
            "bad-number",
            f"{text!r} has more digits than SIRO keeps (numbers are 64-bit floating point, about 15 "
            f"significant digits): it would arrive as {as_float!r}; round it in the file",
        )
    return as_float if fraction or not as_float.is_integer() else int(value)
