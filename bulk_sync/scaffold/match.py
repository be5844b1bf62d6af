"""init-mapping, match: a file's headers matched to SIRO fields by synonyms, and what the cells say:
date formats read from up to 1,000 rows, id columns by content, people columns, enum values,
duration units.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

SAMPLE_ROWS = 1000  # rows read to settle formats and values


# target -> header synonyms (normalised: lower case, words separated by one space)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "externalId": ("id", "activity id", "meeting id", "event id", "appointment id", "record id",
                   "engagement id", "external id", "call id", "task id", "engagement external id", "ref",
                   "reference", "booking id", "booking ref", "event uuid", "meeting uuid", "uid"),
    "subject": ("subject", "title", "meeting title", "meeting name", "activity subject", "call title",
                "appointment title", "event subject", "event name", "event type name", "topic", "what",
                "onderwerp"),
    "content": ("description", "notes", "comments", "body", "meeting notes", "call notes", "note",
                "full comments", "meeting body", "call body", "meeting description", "details", "beschrijving"),
    "startTime": ("start", "start time", "start date time", "meeting start time", "start datetime",
                  "activity date", "due date time", "call start time", "activity date time",
                  "activity start", "event start", "start date and time", "from", "scheduled start",
                  "begins", "scheduled for", "when", "start date", "date", "activity date", "call date",
                  "meeting date", "event date", "appointment date", "date time"),
    "endTime": ("end", "end time", "end date time", "meeting end time", "end datetime", "activity end",
                "event end", "due date end time", "end date and time", "to", "scheduled end", "ends", "end date"),
    "direction": ("direction", "call direction"),
    "engagementType.activityType": ("activity type", "type", "event type", "activity", "engagement type"),
    "engagementType.name": ("meeting type", "appointment type", "call type", "event category",
                            "call and meeting type", "event type name"),
    "remoteCreatedAt": ("created", "created date", "create date", "created at", "date created",
                        "activity created date", "created time", "created on", "add time", "date added"),
    "remoteUpdatedAt": ("last modified", "last modified date", "updated", "last updated", "modified date",
                        "last modified at", "updated at", "modified time", "modified on", "update time",
                        "last modified time"),
    "engagementUsers[0].externalId": ("owner id", "assigned id", "rep id", "user id", "assigned to id",
                                      "activity owner id", "hubspot owner id", "host id", "surveyor id"),
    "engagementUsers[0].email": ("assigned email", "owner email", "rep email", "user email",
                                 "assigned to email", "activity owner email", "host email", "organizer email",
                                 "rep e mail", "owner e mail"),
    "engagementUsers[0].name": ("assigned", "owner", "rep", "assigned to", "activity owner", "owner name",
                                "rep name", "meeting owner", "user", "host", "activity assigned to",
                                "assigned to user", "organizer", "salesperson", "sales rep", "surveyor",
                                "host name", "consultant", "meeting organizer", "organisator van vergadering"),
    "engagementUsers[0].shareOfSale": ("share", "rep share", "share of sale", "owner share", "split"),
    "engagementUsers[]": ("attendees", "participants", "guests", "invitees", "attendee emails"),
    "account.latitude": ("latitude", "lat"),
    "account.longitude": ("longitude", "lng", "lon", "long"),
    "opportunity.closedAt": ("close date", "closed date", "closed at", "deal close date"),
    "account.externalId": ("account id", "company id", "organization id", "org id", "associated company id",
                           "associated company ids", "customer id"),
    "account.name": ("account name", "company", "company name", "organization", "account", "organization name",
                     "associated company", "company account", "customer", "related to", "regarding", "lead",
                     "lead name", "household"),
    "account.phoneNumbers[0]": ("phone", "account phone", "company phone", "phone number"),
    "account.emailAddresses[0]": ("account email", "company email"),
    "account.addresses[0].street": ("street", "address", "billing street", "street address", "address line 1"),
    "account.addresses[0].city": ("city", "billing city"),
    "account.addresses[0].state": ("state", "province", "region", "state province", "billing state"),
    "account.addresses[0].zip": ("zip", "postal code", "zip code", "postcode", "billing zip", "zip postal code",
                                 "billing zip postal code"),
    "account.addresses[0].country": ("country", "billing country", "country region"),
    "opportunity.externalId": ("opportunity id", "deal id", "associated deal ids"),
    "opportunity.name": ("opportunity name", "deal name", "opportunity", "deal", "deal title", "associated deal"),
    "opportunity.amount": ("amount", "deal amount", "opportunity amount", "value", "deal value"),
    "opportunity.disposition": ("stage", "deal stage", "opportunity stage", "outcome", "deal status"),
    "contact.externalId": ("contact id", "person id", "who id"),
    "contact.name": ("contact name", "contact", "person", "name", "person name", "invitee name",
                     "associated contact"),
    "contact.emailAddresses[0]": ("contact email", "person email", "invitee email", "email"),
    "contact.phoneNumbers[0]": ("contact phone", "person phone", "invitee phone", "mobile"),
    "lead.externalId": ("lead id",),
    "lead.firstName": ("first name", "lead first name"),
    "lead.lastName": ("last name", "lead last name"),
}  # fmt: skip


TIME_TARGETS = (
    "startTime", "endTime", "remoteCreatedAt", "remoteUpdatedAt", "opportunity.closedAt", "lastActivityAt",
)  # fmt: skip


# words that make a column an audit time (when a record was created or changed), never a start or end
AUDIT_WORDS = ("creat", "modif", "updat", "add time", "added", "inserted", "last activity", "system")


ENUMS = {
    "direction": ("INBOUND", "OUTBOUND"),
    "engagementType.activityType": ("MEETING", "CALL", "APPOINTMENT", "EMAIL", "TEXT", "EVENT"),
    "opportunity.disposition": ("OPEN", "LOST", "WON"),
}


ENUM_HINTS = {  # common CRM words for SIRO's values
    "won": "WON", "closed won": "WON", "lost": "LOST", "closed lost": "LOST", "open": "OPEN",
    "in": "INBOUND", "incoming": "INBOUND", "inbound": "INBOUND", "out": "OUTBOUND", "outgoing": "OUTBOUND",
    "outbound": "OUTBOUND", "meeting": "MEETING", "call": "CALL", "phone call": "CALL", "email": "EMAIL",
    "event": "EVENT", "appointment": "APPOINTMENT", "visit": "APPOINTMENT", "site visit": "APPOINTMENT",
    "demo": "MEETING", "sms": "TEXT", "text": "TEXT", "video call": "MEETING", "online meeting": "MEETING",
    "in person": "APPOINTMENT", "in person meeting": "APPOINTMENT", "phone": "CALL", "home visit": "APPOINTMENT",
}  # fmt: skip


DATE_TIME_FORMATS = (
    "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %I:%M %p", "%d-%m-%Y %H:%M", "%Y/%m/%d %H:%M", "%m/%d/%y %I:%M %p",
    "%m/%d/%y %H:%M", "%d/%m/%y %H:%M", "%b %d, %Y %I:%M %p", "%d %b %Y %H:%M", "%A, %B %d, %Y %I:%M %p",
    # day first with a 12-hour clock (Zoho's default "31/10/2026 02:30 PM"), and the dashed orders
    "%d/%m/%Y %I:%M %p", "%d/%m/%Y %I:%M:%S %p", "%d/%m/%y %I:%M %p", "%d.%m.%Y %I:%M %p",
    "%d-%m-%Y %I:%M %p", "%d-%m-%Y %H:%M:%S", "%m-%d-%Y %H:%M", "%m-%d-%Y %I:%M %p",
)  # fmt: skip


DATE_FORMATS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y-%m-%d",
    "%m/%d/%y",
    "%d/%m/%y",
    "%b %d, %Y",
    "%d %b %Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
)


TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p")


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def header_names(header: str) -> list[str]:
    """A header's names to match: the whole, without a parenthesised note ("(Do Not Modify) Modified
    On", "Duration (seconds)"), and the part after a group prefix ("Activity - Subject")."""
    out = [norm(header)]
    bare = re.sub(r"\([^)]*\)", " ", header)
    if bare != header:
        out.append(norm(bare))
    for sep in (" - ", ": ", " — "):
        if sep in header:
            out.append(norm(header.split(sep, 1)[1]))
    return out


def is_audit(header: str) -> bool:
    n = norm(header)
    return any(w in n for w in AUDIT_WORDS)


def match_headers(headers: Sequence[str]) -> dict[str, str]:
    """target -> header: exact synonyms first, then the closest fuzzy ones (ratio >= 0.85);
    each header and each target used once; audit columns never start or end an engagement."""
    scored: list[tuple[float, int, str, str]] = []
    for target, names in SYNONYMS.items():
        for h in headers:
            if target in ("startTime", "endTime") and is_audit(h):
                continue
            best = 0.0
            for n in header_names(h):
                if not n:
                    continue
                best = max(
                    best, max(1.0 if n == s else difflib.SequenceMatcher(None, n, s).ratio() for s in names)
                )
            if best >= 0.85:
                scored.append((best, -len(names), target, h))
    scored.sort(key=lambda t: (-t[0], t[1]))
    out: dict[str, str] = {}
    used: set[str] = set()
    for _score, _, target, h in scored:
        if target not in out and h not in used:
            out[target] = h
            used.add(h)
    return out


@dataclass
class Formats:
    """What a column's cells say about their date/time format."""

    format: str | list[str] | None = None  # None: ISO 8601 (no format needed)
    todo: str | None = None  # why the format is left as a TODO
    offsets: bool = False  # every time carries its own offset (Z, +02:00): the zone does not matter
    choices: tuple[str, ...] = ()  # with a TODO: the formats that read the cells differently
    settled_by: str | None = None  # a cell only ``format`` reads, which settled the day/month order


def guess_formats(samples: Sequence[str], formats: Sequence[str] = DATE_TIME_FORMATS) -> Formats | None:
    """The format that reads the column, from its cells: the one that parses the most, as long as
    it parses all but a few (max(1, 2 %)) of them; None when none does. When two formats read the
    same cells as different dates (day and month both 12 or less) the choice is a TODO."""
    values = [s.strip() for s in samples if s.strip()]
    if not values:
        return None
    allowed = max(1, len(values) // 50)
    iso = [iso_text(v) for v in values]
    if sum(k is not None for k in iso) >= len(values) - allowed:
        return Formats(None, offsets=all(k == "aware" for k in iso if k is not None))
    fits: dict[str, list[dt.datetime | None]] = {}
    for fmt in formats:
        parsed = [strptime_or_none(v, fmt) for v in values]
        if sum(p is not None for p in parsed) >= len(values) - allowed:
            fits[fmt] = parsed
    if not fits:
        return None
    best = max(fits, key=lambda f: sum(p is not None for p in fits[f]))
    return _day_month(values, fits, best)


def _day_month(values: list[str], fits: dict[str, list[dt.datetime | None]], best: str) -> Formats:
    """``best``, or a TODO when another format reads the same cells as other dates (day and month
    both 12 or less). A cell only one order reads (a day over 12: "31/10/2026") settles it, even
    one cell in many."""
    rivals = [f for f in fits if f != best and _differs(fits[f], fits[best])]
    settled = [f for f in rivals if _settled(fits[best], fits[f])]
    rivals = [f for f in rivals if f not in settled]
    if rivals:
        i = next(
            k for k, (a, b) in enumerate(zip(fits[best], fits[rivals[0]], strict=True)) if a and b and a != b
        )
        return Formats(
            best,
            todo=f"{values[i]!r} reads as {fits[best][i]:%Y-%m-%d} with {best!r} and as "
            f"{fits[rivals[0]][i]:%Y-%m-%d} with {rivals[0]!r}: write the one the export uses",
            choices=(best, *rivals),
        )
    if settled:
        cell = next(v for v, a, b in zip(values, fits[best], fits[settled[0]], strict=True) if a and not b)
        return Formats(best, settled_by=cell)
    return Formats(best)


def day_order(fmt: str) -> str | None:
    """ "dm" for a day-first format, "md" for month-first, None when it has no such choice."""
    if "%d" not in fmt or "%m" not in fmt or fmt.startswith("%Y"):
        return None
    return "dm" if fmt.index("%d") < fmt.index("%m") else "md"


def _settled(best: list[dt.datetime | None], rival: list[dt.datetime | None]) -> bool:
    """``best`` reads every cell ``rival`` reads and more: the cells only it reads settle the order
    (a cell neither reads is junk, allowed either way)."""
    mine = {i for i, p in enumerate(best) if p is not None}
    theirs = {i for i, p in enumerate(rival) if p is not None}
    return theirs < mine


def strptime_or_none(text: str, fmt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, fmt)
    except ValueError:
        return None


def _differs(a: list[dt.datetime | None], b: list[dt.datetime | None]) -> bool:
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return bool(both) and any(x != y for x, y in both) and len(both) >= len(a) // 2


def iso_text(text: str) -> str | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", text):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return "aware" if parsed.tzinfo is not None else "naive"


PERSON = re.compile(r"^[^<>()@]*[<(]\s*[^\s<>()]+@[^\s<>()]+\s*[>)]\s*$")


EMAIL_RE = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


def people_column(cells: Sequence[str]) -> tuple[bool, bool]:
    """(every filled cell is one "Name (email)" / "Name <email>", some cells hold several joined by ;)"""
    filled = [c.strip() for c in cells if c.strip()]
    if not filled:
        return False, False
    parts = [p.strip() for c in filled for p in c.split(";") if p.strip()]
    people = all(PERSON.match(p) or EMAIL_RE.match(p) for p in parts) and any(PERSON.match(p) for p in parts)
    return people, any(";" in c for c in filled)


def unique_id_column(headers: Sequence[str], samples: dict[str, list[str]], taken: set[str]) -> str | None:
    """A column whose cells are all filled and all different, and look like ids (no spaces; digits
    or a code), preferring one whose name says id."""
    found = []
    for h in headers:
        cells = [c.strip() for c in samples.get(h, [])]
        if h in taken or len(cells) < 2 or not all(cells) or len(set(cells)) != len(cells):
            continue
        if (
            all(" " not in c and any(ch.isdigit() for ch in c) for c in cells)
            and not looks_like_dates(cells)
            and not all_parse(cells, TIME_FORMATS)  # "14:30:00" is a time of day, never an id
        ):
            found.append(h)
    found.sort(key=lambda h: (not re.search(r"\b(id|ref|uuid|key|no|number)\b", norm(h)), headers.index(h)))
    return found[0] if found else None


def looks_like_dates(cells: Sequence[str]) -> bool:
    return guess_formats(cells, DATE_TIME_FORMATS + DATE_FORMATS) is not None


def enum_guess(target: str, value: str) -> str | None:
    guess = ENUM_HINTS.get(norm(value)) or next(
        (c for c in ENUMS[target] if c.casefold() == norm(value)), None
    )
    return guess if guess in ENUMS[target] else None


def duration_unit(header: str) -> str:
    """The unit of a duration column's bare numbers, from its name ("Duration (seconds)")."""
    n = norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header))  # "CallDurationInSeconds" too
    for words, unit in (
        (("second", "seconds", "sec", "secs", "s"), "seconds"),
        (("hour", "hours", "hr", "hrs", "h"), "hours"),
    ):
        if any(re.search(rf"\b{w}\b", n) for w in words):
            return f", unit: {unit}"
    return ""  # minutes, the default


def all_parse(cells: Sequence[str], formats: Sequence[str]) -> bool:
    """Every filled cell but a few (max(1, 2 %)) reads with one of ``formats``."""
    values = [c.strip() for c in cells if c.strip()]
    allowed = max(1, len(values) // 50)
    return len(values) > allowed and any(
        sum(strptime_or_none(v, f) is not None for v in values) >= len(values) - allowed for f in formats
    )


def yaml_str(text: str) -> str:
    """A YAML scalar that stays a string (quoted when YAML would read it otherwise)."""
    if (
        re.fullmatch(r"[A-Za-z][A-Za-z0-9 _()/.-]*", text)
        and text.lower() not in {"yes", "no", "on", "off", "true", "false", "null", "todo"}
        and not text.endswith(" ")
    ):
        return text
    return "'" + text.replace("'", "''") + "'"
