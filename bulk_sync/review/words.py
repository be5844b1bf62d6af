"""Review, words: a run's messages in an ops person's words. The report's message is written for
whoever fixes the file or the mapping: SIRO's field paths (``startTime:``,
``engagementUsers[0].email:``), format strings (``'%m/%d/%Y %I:%M %p'``), the mapping's keys
(``default: invalid``, ``decimal:``), Python's and pydantic's phrasing. On the page each problem
says what the cell should hold and what it holds ("expected a number, got '12,5x'"), and what to
do when the cell is not the problem (ask whoever keeps the mapping). The cell itself is outlined
on the page: the field path is not needed. A problem of a shape not known here is shown as the
run wrote it, without its field path (and a message that starts with the field's name, as a rule
of SIRO's may: "externalId is reserved", says "the value" instead). The report and the error file
keep the run's own message.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from .check import said as said_dates

# a SIRO field path, as the run's messages start with it: amount, startTime, engagementUsers[0].email
_PATH = r"[A-Za-z_]\w*(?:\[\d*\])*(?:\.[A-Za-z_]\w*(?:\[\d*\])*)*"
_FIELD = re.compile(rf"^\s*(?:row (?P<row>\d+): )?(?P<path>{_PATH}): (?=\S)")
_VALUE = r"(?P<got>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"  # a cell as messages quote it (Python's repr)
_MAPPING = "ask whoever keeps the mapping"

Say = Callable[[re.Match[str]], str]


def _text(quoted: str) -> str:
    """A cell as a message quotes it, as the person typed it; quoted still when that shows what
    plain text would not (nothing, spaces at an end)."""
    try:
        text = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return quoted
    return text if isinstance(text, str) and text and text == text.strip() else quoted


def _got(m: re.Match[str]) -> str:
    return _text(m["got"])


# (pattern, words): the first whose pattern matches a problem (its field path taken off) says it
_SAID: list[tuple[str, Say]] = [
    # numbers
    (
        r"{V} is not a number with (?P<mark>a decimal \w+) \(the mark this column uses\).*",
        lambda m: f"expected a number with {m['mark']}, got {_got(m)}",
    ),
    (r"{V} is not a (?:finite )?number", lambda m: f"expected a number, got {_got(m)}"),
    (
        r"{V} is \S+, outside 0 to 1 \(a share is a fraction.*\)",
        lambda m: f"expected a share from 0 to 1 (0.5 or 50% is half), got {_got(m)}",
    ),
    (
        r"{V} is \S+, outside (?P<lo>\S+) to (?P<hi>\S+)",
        lambda m: f"expected a number from {m['lo']} to {m['hi']}, got {_got(m)}",
    ),
    (
        r"{V} reads as (?P<a>\S+) with a decimal point and as (?P<b>\S+) with a decimal comma, .*",
        lambda m: (
            f"{_got(m)} could be {m['a']} or {m['b']}: type it without a thousands separator, "
            f"with a point for decimals ({m['a']} or {m['b']})"
        ),
    ),
    (
        r"{V} has more digits than SIRO keeps .*",
        lambda m: f"{_got(m)} has more digits than SIRO keeps (about 15)",
    ),
    # yes/no, durations, time zones
    (r"{V} is not true/false.*", lambda m: f"expected yes or no (or true/false, 1/0), got {_got(m)}"),
    (
        r"{V} is not a duration(?: \(write (?P<how>.*)\))?",
        lambda m: f"expected a duration like {m['how'] or '01:30, 90 or 1h 30m'}, got {_got(m)}",
    ),
    (
        r"unknown time zone {V} .*",
        lambda m: f"expected a time zone such as America/Chicago or Europe/Berlin, got {_got(m)}",
    ),
    # dates a format did not catch (a format's is said by check.said, as an example)
    (
        r"{V} does not exist in (?P<zone>\S+) \(clocks skip that hour when daylight saving time starts\)",
        lambda m: (
            f"{_got(m)} does not exist in {m['zone']}: the clocks skip that hour when daylight "
            "saving time starts"
        ),
    ),
    (
        r"expected an ISO 8601 date-time such as (?P<like>\S+), got {V}",
        lambda m: f"expected a date and time like {m['like']}, got {_got(m)}",
    ),
    (r"{V} does not match 'ISO 8601'", lambda m: f"expected a date like 2026-03-31, got {_got(m)}"),
    (
        r"{V} happens twice in (?P<zone>\S+) \(the clocks go back an hour\): \S+ \((?P<a>[^)]+)\) or \S+ "
        r"\((?P<b>[^)]+)\), and nothing in the file says which",
        lambda m: (
            f"{_got(m)} happens twice in {m['zone']} (the clocks go back an hour): type it with "
            f"its offset to say which ({m['a']} or {m['b']})"
        ),
    ),
    (r"set `ambiguous: earlier` or `ambiguous: later`.*", lambda m: ""),  # said just above
    # lists, maps, enums
    (
        r"{V} is not in the map of \S+ \(its `default: invalid` says .*\): the map lists (?P<list>.*)",
        lambda m: f"expected one of {m['list']}, got {_got(m)}",
    ),
    (
        r"{V} is not a known value for \S+: the mapping maps (?P<list>.*)",
        lambda m: f"expected one of {m['list']}, got {_got(m)}",
    ),
    (r"SIRO also accepts (?P<list>.*)", lambda m: f"or one of SIRO's own: {m['list']}"),
    (
        r"{V} is not one of (?P<list>.*?) \(add a `map:` to the mapping to translate it\)",
        lambda m: f"expected one of {m['list']}, got {_got(m)}",
    ),
    (r"Input should be (?P<want>.*), got {V}", lambda m: f"expected {m['want']}, got {_got(m)}"),
    # empty cells, emails, what `extract` looks for, groups, size
    (r"\S+ is required but the cell is empty", lambda m: "expected a value: the cell is empty"),
    (
        r"\S+ is required when .* is sent, but this cell is empty",
        lambda m: "expected a value: the cell is empty (the cells beside it need it)",
    ),
    (
        r"\S+ is required when .* is sent",
        lambda m: f"SIRO needs a value the mapping does not give: {_MAPPING}",
    ),
    (r"the mapping gives no value for it", lambda m: ""),  # said just above
    (
        r"{V} is not an email address",
        lambda m: f"expected an email address like name@example.com, got {_got(m)}",
    ),
    (
        r"{V} has no email address",
        lambda m: f"expected a name with an email address, like Ann Lee <ann@example.com>, got {_got(m)}",
    ),
    (
        r"SIRO needs one for each engagement user .*",
        lambda m: "SIRO needs an email address for each person (it links people by email)",
    ),
    (
        r"{V} does not contain (?P<p>.+)",
        lambda m: (
            f"{_got(m)} does not have the part the mapping takes from this column (what matches "
            f"{_text(m['p'])}): check the cell, or {_MAPPING}"
        ),
    ),
    (
        r"\S+ differs inside the group: (?P<a>.+) \(an earlier row\) vs (?P<b>.+) \(row (?P<row>\d+)\)",
        lambda m: f"{m['a']} in an earlier row of the same record, {m['b']} in row {m['row']}",
    ),
    (r"make the rows agree, or set `conflicts: first` or `last`", lambda m: "make the rows agree"),
    (
        r"the record is (?P<n>[\d,]+) bytes as JSON, more than the (?P<max>[\d,]+) a request may carry.*",
        lambda m: f"the row is too long to send ({m['n']} bytes, at most {m['max']})",
    ),
    # pydantic's phrasing, on any other rule of SIRO's
    (r"String should have at most (?P<n>\d+) characters?", lambda m: f"expected at most {m['n']} characters"),
    (
        r"String should have at least (?P<n>\d+) characters?",
        lambda m: f"expected at least {m['n']} characters",
    ),
    (r"Input should be (?P<want>.+)", lambda m: f"expected {m['want']}"),
    (r"Value error, (?P<why>.+)", lambda m: m["why"]),
    # SIRO's own answer (api-invalid), in its checks' phrasing
    (r"Required", lambda m: "expected a value"),
    (
        r"String must contain at most (?P<n>\d+) character\(s\)",
        lambda m: f"expected at most {m['n']} characters",
    ),
    (
        r"Invalid enum value\. Expected (?P<list>.*), received {V}",
        lambda m: f"expected one of {m['list'].replace(' | ', ', ')}, got {_got(m)}",
    ),
    (r"Expected (?P<want>\w+), received (?P<got>\w+)", lambda m: f"expected a {m['want']}, not a {m['got']}"),
    (
        r"Invalid (?P<what>email|datetime|date|url|uuid)",
        lambda m: "expected " + ("a date and time" if m["what"] == "datetime" else f"a valid {m['what']}"),
    ),
]
RULES = [(re.compile(p.replace("{V}", _VALUE), re.S), say) for p, say in _SAID]
# rows to send again (failed, not_sent): nothing to fix in their cells
AGAIN = {
    "retries-exhausted": "SIRO did not take it ({tries}: it timed out or failed); nothing to fix: "
    "send it again",
    "auth-refused": "SIRO refused the run's token, so it was not sent; nothing to fix: send it again",
    "server-unavailable": "SIRO was not answering, so it was not sent; nothing to fix: send it again",
    "aborted": "the run stopped before sending it; nothing to fix: send it again",
    "interrupted": "the run was stopped while sending it; nothing to fix: send it again",
}


def said(message: str | None, error_type: str | None = None) -> str:
    """``message`` (a run's, for a row with ``error_type``) in an ops person's words: each of its
    problems (``; `` between them) said once."""
    if error_type in AGAIN:
        tries = re.search(r"gave up after (\d+) attempt", message or "")
        return AGAIN[error_type].format(tries=f"{tries[1]} tries" if tries else "several tries")
    if error_type == "mapping":  # the run's mapping no longer fits the rows (see check.check_rows)
        return f"the run's mapping cannot check this row: {_MAPPING} ({' '.join((message or '').split())})"
    out: list[str] = []
    for part in (message or "").split("; "):
        part = _one(part)
        if part and part not in out:
            out.append(part)
    words = "; ".join(out)
    return f"SIRO refused it: {words}" if error_type in ("api-invalid", "api-rejected") and words else words


def _one(part: str) -> str:
    dated = said_dates(part)  # a date that does not match the mapping's format: an example of one
    if dated != part:
        return dated
    found = _FIELD.match(part)
    row = f"row {found['row']}: " if found and found["row"] else ""
    bare = part[found.end() :] if found else part.strip()
    for pattern, say in RULES:
        m = pattern.fullmatch(bare)
        if m is not None:
            words = say(m)
            return row + words if words else ""
    if found and not re.search(r"[.\[A-Z]", found[0]):  # "extra: 'x'" starts with no field path
        return part.strip()
    if found:  # SIRO's own rule, said of its field ("externalId is reserved"): of the cell's value
        name = re.sub(r"\[\d*\]", "", found["path"].rsplit(".", 1)[-1])
        bare = re.sub(rf"^{re.escape(name)}\b", "the value", bare)
    return row + bare
