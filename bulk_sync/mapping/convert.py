"""Map stage, convert: ONE cell -> its value or a RowError: the reference semantics of every transform
(map, pad, extract, people lists, durations, booleans, date-times with zones and DST). columns.py
must agree with it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from typing import Any

from .. import rx
from ..errors import ROW_TEMPLATES, RowError
from .numbers import CellError, parse_number
from .spec import (
    INVALID,
    MAP_DEFAULT,
    OMIT,
    UNLISTED,
    DatetimeSpec,
    Field_,
    enum_member,
    loose_name,
    zone_named,
)


def convert_cell(f: Field_, cell: str | None, header: str | None, zone: str | None = None) -> Any:
    """One cell -> the value to send, OMIT (nothing to send), or a RowError: the reference
    semantics of every transform, in the order the mapping language documents them."""
    if cell is None:  # a constant
        return f.spec.value
    text = _picked_text(f, cell.strip(), header)
    if isinstance(text, RowError):
        return text
    if not text:
        return _empty(f, header)
    if "\ufffd" in text:
        return RowError(
            "bad-encoding",
            f"{f.target}: the cell holds the character \ufffd, which stands for bytes that could not be "
            f"read as text ({text[:60]!r}); type the text again",
            header,
        )
    spec, kind = f.spec, f.kind
    if kind.kind == "people":
        return _people(f, text, header)
    if spec.duration is not None:
        try:
            return parse_duration(text, spec.duration.unit)
        except CellError as exc:
            return RowError(exc.slug, f"{f.target}: {exc}", header)
    if spec.split is not None:
        return _entries(f, text, header)
    if spec.map is not None:
        mapped = _mapped(f, text, header)
        if mapped is not _NOT_LISTED:
            return mapped
    return _typed(f, text, header, zone)


_NOT_LISTED: Any = object()  # a cell the map does not list, and that stays as it is


def _picked_text(f: Field_, text: str, header: str | None) -> str | RowError:
    """The text the field reads from the cell: the part first_of/last_of picks, the name or the
    email of "Name <email>", what `extract` finds, lowered, padded."""
    spec, kind = f.spec, f.kind
    if text and (spec.first_of is not None or spec.last_of is not None):
        parts = [p.strip() for p in text.split(spec.first_of or spec.last_of or "") if p.strip()]
        text = (parts[0] if spec.first_of is not None else parts[-1]) if parts else ""
    if text and spec.parse == "name_email" and kind.kind == "string":
        name, email = _name_email(text)
        text = email if _wants_email(f.target) else name
    if text and spec.extract is not None:
        m = rx.compile_pattern(spec.extract).search(text)
        if m is None:
            return RowError("no-match", f"{f.target}: {text!r} does not contain {spec.extract!r}", header)
        text = (m.group(1) if m.groups() else m.group(0) or "").strip()
    if spec.lower and kind.kind != "people":  # a list of people lowers the emails, not the names
        text = text.lower()
    if spec.pad is not None and text:
        text = text.rjust(spec.pad.width, spec.pad.with_)
    return text


def _empty(f: Field_, header: str | None) -> Any:
    spec = f.spec
    if spec.default is not None:
        return spec.default
    if spec.required:
        return RowError("missing-value", f"{f.target} is required but the cell is empty", header)
    return None if spec.blank == "null" else "" if spec.blank == "empty" else OMIT


def _entries(f: Field_, text: str, header: str | None) -> Any:
    """`split`: the cell's entries, each once, in order."""
    spec = f.spec
    assert spec.split is not None
    entries = [e.strip() for e in text.split(spec.split)]
    entries = list(dict.fromkeys(e.lower() if spec.lower else e for e in entries if e))
    if f.kind.email:
        wrong = next((e for e in entries if not _EMAIL.fullmatch(e)), None)
        if wrong is not None:
            return _bad_email(f, wrong, header)
    return tuple(entries) if entries else OMIT


def _mapped(f: Field_, text: str, header: str | None) -> Any:
    """`map`: the value the map gives the cell (its `default` for one it does not list), or
    _NOT_LISTED when the cell goes on as it is (a SIRO value of an enum, or no default)."""
    spec, kind = f.spec, f.kind
    assert spec.map is not None
    norm = loose_name(text)
    for k, v in spec.map.items():
        if k != MAP_DEFAULT and loose_name(str(k)) == norm:
            return OMIT if v is None else v
    fallback = spec.map_default
    siro_value = kind.kind == "enum" and enum_member(text, kind) is not None
    if fallback is not UNLISTED and not siro_value:
        if fallback == INVALID:
            return RowError(
                "invalid-enum" if kind.kind == "enum" else "unmapped-value",
                f"{text!r} is not in the map of {f.target} (its `default: invalid` says such a cell "
                f"makes the row invalid): the map lists {_listed(spec.map)}",
                header,
            )
        return OMIT if fallback is None else fallback
    if kind.kind == "enum" and not siro_value:
        return RowError(
            "invalid-enum",
            f"{text!r} is not a known value for {f.target}: the mapping "
            f"maps {_listed(spec.map)}; SIRO also accepts {', '.join(kind.choices)}",
            header,
        )
    return _NOT_LISTED


def _typed(f: Field_, text: str, header: str | None, zone: str | None) -> Any:
    """The text as the target's type: a date-time, an enum member, a number, a boolean, an email."""
    spec, kind = f.spec, f.kind
    try:
        if spec.datetime is not None:
            return _datetime(text, spec.datetime, kind.local_time, zone)
        if kind.kind == "enum":
            member = enum_member(text, kind)
            if member is None:
                return RowError(
                    "invalid-enum",
                    f"{text!r} is not one of {', '.join(kind.choices)} "
                    f"(add a `map:` to the mapping to translate it)",
                    header,
                )
            return member
        if kind.kind == "number":
            return parse_number(text, spec.decimal, kind.bounds)
        if kind.kind == "boolean":
            return _boolean(text)
    except CellError as exc:
        return RowError(exc.slug, f"{f.target}: {exc}", header)
    if kind.email and not _EMAIL.fullmatch(text):
        return _bad_email(f, text, header)
    return text


def _listed(mapped: dict[str, Any]) -> str:
    return ", ".join(repr(str(k)) for k in mapped if k != MAP_DEFAULT)


# "Ann Lee <ann@x.com>", "Ann Lee (ann@x.com)", '"Lee, Ann" <ann@x.com>', "ann@x.com", "Ann Lee"
_NAME_EMAIL = re.compile(r"^(?P<name>.*?)\s*[<(]\s*(?P<email>[^<>()\s]+@[^<>()\s]+)\s*[>)]$")


def _name_email(text: str) -> tuple[str, str]:
    """(name, email) of one person as CRMs write them; either may be ""."""
    m = _NAME_EMAIL.match(text)
    if m is not None:
        return m["name"].strip().strip("\"'").strip(), m["email"]
    if "@" in text and not any(ch.isspace() for ch in text):
        return "", text
    return text, ""


def _wants_email(target: str) -> bool:
    """`parse: name_email` gives these targets the email, and every other target the name."""
    last = target.rsplit(".", 1)[-1]
    return last in ("email", "externalId") or last.startswith("emailAddresses")


def _people(f: Field_, text: str, header: str | None) -> Any:
    """One cell of several people -> engagement users, in the cell's order, one per email."""
    people: dict[str, dict[str, str]] = {}
    for part in (p.strip() for p in text.split(f.spec.split or ";")):
        if not part:
            continue
        name, email = _name_email(part)
        if f.spec.lower:
            email = email.lower()
        if not email or not _EMAIL.fullmatch(email):
            return RowError(
                "bad-email",
                f"{f.target}: {part!r} has no email address; SIRO needs one for each engagement user "
                "(it links them to its own users by email)",
                header,
            )
        person = {"externalId": email, "email": email}
        if name:
            person["name"] = name
        people.setdefault(email.casefold(), person)
    return tuple(people.values()) if people else OMIT


_CLOCK = re.compile(r"(?P<h>\d+):(?P<m>[0-5]?\d)(?::(?P<s>[0-5]?\d(?:\.\d+)?))?")


_WORDS = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?\s*)?(?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in(?:utes?|s)?)?\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec(?:onds?|s)?)?)?",
    re.IGNORECASE,
)


_ISO_DURATION = re.compile(
    r"PT(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?"
)


_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


def parse_duration(text: str, unit: str) -> dt.timedelta:
    """An elapsed time: '01:30' and '1:30:00' (hours:minutes[:seconds]), '90' (in ``unit``),
    '1h 30m', '90 min', 'PT1H30M'."""
    t = text.strip()
    for rx_ in (_CLOCK, _ISO_DURATION, _WORDS):
        m = rx_.fullmatch(t)
        if m is not None and any(m.groupdict().values()):
            seconds = sum(float(m[g] or 0) * k for g, k in (("h", 3600), ("m", 60), ("s", 1)))
            return dt.timedelta(seconds=seconds)
    try:
        number = float(t)
    except ValueError:
        raise CellError(
            "bad-duration",
            f"{text!r} is not a duration (write 01:30, 1:30:00, 90 for {unit}, 1h 30m or PT1H30M)",
        ) from None
    if not math.isfinite(number) or number < 0:
        raise CellError("bad-duration", f"{text!r} is not a duration")
    return dt.timedelta(seconds=number * _UNITS[unit])


def end_after(start: Any, elapsed: Any) -> Any:
    """The instant ``elapsed`` after the instant ``start`` (UTC text): elapsed time, so a meeting
    across a daylight-saving change ends when the clock on the wall says it does."""
    if type(start) is not str or type(elapsed) is not dt.timedelta:
        return OMIT
    try:
        at = dt.datetime.fromisoformat(start)
    except ValueError:
        return OMIT
    if at.tzinfo is None:
        return OMIT
    return (at + elapsed).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A plausible address: a dot-atom local part, an @, a domain of two or more labels ending in a
# top-level domain (letters, or punycode). Not RFC 5322 in full (no quoted local parts, no IP
# literals): what CRMs hold for people. Letters of any script are allowed (internationalised mail).
_EMAIL = re.compile(
    r"(?=.{3,254}$)[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
)


def _bad_email(f: Field_, text: str, header: str | None) -> RowError:
    return RowError(
        "bad-email",
        f"{f.target}: {text!r} is not an email address; SIRO links people by email, so a wrong one "
        "loses the match with its recordings",
        header,
    )


_TRUE = {"true", "yes", "y", "1", "t"}


_FALSE = {"false", "no", "n", "0", "f"}


def _boolean(text: str) -> bool:
    low = text.casefold()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise CellError("bad-boolean", f"{text!r} is not true/false (or yes/no, 1/0)")


_EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # Excel's day 0 (1900 date system, with its leap-year bug)


_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")


@functools.lru_cache(maxsize=256)
def _literals(fmt: str) -> str:
    """The characters strptime's pattern for ``fmt`` matches only as themselves: its punctuation
    outside the directives (letters match in any case, white space as any run of it). A text
    without one of them cannot match ``fmt``: no need to try (a file whose every date is in
    another format spent most of its time in strptime's failures)."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":  # a directive, or %%
            i += 2
            continue
        if not fmt[i].isalnum() and not fmt[i].isspace():
            out.append(fmt[i])
        i += 1
    return "".join(dict.fromkeys(out))


def _datetime(text: str, spec: DatetimeSpec, local: bool, zone: str | None = None) -> str:
    parsed: dt.datetime | None = None
    for fmt in spec.formats:
        if not all(c in text for c in _literals(fmt)):
            continue  # (strptime would raise ValueError)
        try:
            parsed = dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None and _SERIAL.match(text) and 1 <= float(text) < 2958466:  # an Excel serial number
        parsed = _EXCEL_EPOCH + dt.timedelta(days=float(text))
        parsed = parsed.replace(microsecond=0) + dt.timedelta(seconds=round(parsed.microsecond / 1e6))
    if parsed is None:
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            want = " or ".join(repr(f) for f in spec.formats) or "ISO 8601"
            raise CellError("bad-datetime", f"{text!r} does not match {want}") from None
    try:
        return _zoned(text, parsed, spec, local, zone)
    except OverflowError:  # the first or last day there is, moved to UTC
        raise CellError("bad-datetime", f"{text!r} is out of the range of dates SIRO takes") from None


def _zoned(text: str, parsed: dt.datetime, spec: DatetimeSpec, local: bool, zone: str | None) -> str:
    zone_name = (zone or "").strip() or spec.timezone
    tz = zone_named(zone_name) if zone_name else None
    if zone_name and tz is None:
        raise CellError(
            "bad-timezone", f"unknown time zone {zone_name!r} (use an IANA name such as Europe/Berlin)"
        )
    if parsed.tzinfo is None:
        if tz is None:  # only startTimeLocalized may omit the zone: wall-clock in, wall-clock out
            return parsed.strftime("%Y-%m-%dT%H:%M:%S")
        early = parsed.replace(tzinfo=tz, fold=0)
        late = parsed.replace(tzinfo=tz, fold=1)
        if early.utcoffset() != late.utcoffset() and _exists(early, parsed, tz):
            if spec.ambiguous == "error" and not local:  # a wall-clock field sends the same either way
                raise CellError("ambiguous-datetime", ambiguous_message(text, str(zone_name), early, late))
            aware = late if spec.ambiguous == "later" else early
        else:
            aware = early
        if not _exists(aware, parsed, tz):
            raise CellError(
                "bad-datetime",
                f"{text!r} does not exist in {zone_name} "
                "(clocks skip that hour when daylight saving time starts)",
            )
    else:
        aware = parsed.astimezone(tz) if tz is not None else parsed
    if local:
        return aware.strftime("%Y-%m-%dT%H:%M:%S")
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ambiguous_message(text: str, zone: str, early: dt.datetime, late: dt.datetime) -> str:
    """The ``ambiguous-datetime`` message: the text, its zone, both instants it can be."""
    return ROW_TEMPLATES["ambiguous-datetime"].format(
        text=repr(text), zone=zone, earlier=_instant(early), later=_instant(late)
    )


def _instant(aware: dt.datetime) -> str:
    """``2026-10-25T00:30:00Z (02:30+02:00)``: the UTC instant and the wall-clock time with its offset."""
    utc = aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{utc} ({aware.isoformat(timespec='minutes')})"


def _exists(aware: dt.datetime, wall: dt.datetime, tz: dt.tzinfo) -> bool:
    """False for a wall-clock time in a spring-forward gap (it comes back as another time)."""
    return aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == wall
