"""``bulk-sync init-mapping FILE``: a starter mapping, written by matching a file's headers to
SIRO fields (synonyms, then fuzzy matching), with date formats and enum maps guessed from the
first rows. The columns it could not place are listed as comments. It is a start, not a verdict:
``bulk-sync validate`` then says what is left to fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence

from .load import Source

# target -> header synonyms (normalised: lower case, words separated by one space)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "externalId": ("id", "activity id", "meeting id", "event id", "appointment id", "record id",
                   "engagement id", "external id", "call id", "task id", "engagement external id"),
    "subject": ("subject", "title", "meeting title", "meeting name", "activity subject", "call title",
                "appointment title", "event subject"),
    "content": ("description", "notes", "comments", "body", "meeting notes", "call notes", "note",
                "full comments", "meeting body", "call body"),
    "startTime": ("start", "start time", "start date time", "meeting start time", "start datetime",
                  "activity date", "due date time", "call start time", "activity date time",
                  "activity start", "event start"),
    "endTime": ("end", "end time", "end date time", "meeting end time", "end datetime", "activity end",
                "event end", "due date end time"),
    "direction": ("direction", "call direction"),
    "engagementType.activityType": ("activity type", "type", "event type", "activity", "engagement type"),
    "engagementType.name": ("meeting type", "appointment type", "call type", "meeting outcome", "event category"),
    "remoteCreatedAt": ("created", "created date", "create date", "created at", "date created", "activity created date"),
    "remoteUpdatedAt": ("last modified", "last modified date", "updated", "last updated", "modified date",
                        "last modified at", "updated at"),
    "engagementUsers[0].externalId": ("owner id", "assigned id", "rep id", "user id", "assigned to id",
                                      "activity owner id", "hubspot owner id"),
    "engagementUsers[0].email": ("assigned email", "owner email", "rep email", "user email",
                                 "assigned to email", "activity owner email", "host email", "email"),
    "engagementUsers[0].name": ("assigned", "owner", "rep", "assigned to", "activity owner", "owner name",
                                "rep name", "meeting owner", "user", "host", "activity assigned to"),
    "engagementUsers[0].shareOfSale": ("share", "rep share", "share of sale", "owner share", "split"),
    "account.latitude": ("latitude", "lat"),
    "account.longitude": ("longitude", "lng", "lon", "long"),
    "opportunity.closedAt": ("close date", "closed date", "closed at", "deal close date"),
    "account.externalId": ("account id", "company id", "organization id", "org id", "associated company id"),
    "account.name": ("account name", "company", "company name", "organization", "account", "organization name",
                     "associated company"),
    "account.phoneNumbers[0]": ("phone", "account phone", "company phone", "phone number"),
    "account.emailAddresses[0]": ("account email", "company email"),
    "account.addresses[0].street": ("street", "address", "billing street", "street address", "address line 1"),
    "account.addresses[0].city": ("city", "billing city"),
    "account.addresses[0].state": ("state", "province", "region", "state province", "billing state"),
    "account.addresses[0].zip": ("zip", "postal code", "zip code", "postcode", "billing zip"),
    "account.addresses[0].country": ("country", "billing country", "country region"),
    "opportunity.externalId": ("opportunity id", "deal id"),
    "opportunity.name": ("opportunity name", "deal name", "opportunity", "deal"),
    "opportunity.amount": ("amount", "deal amount", "opportunity amount", "value", "deal value"),
    "opportunity.disposition": ("stage", "deal stage", "opportunity stage", "status", "outcome"),
    "contact.externalId": ("contact id", "person id", "who id"),
    "contact.name": ("contact name", "contact", "person", "name", "person name", "attendee"),
    "lead.externalId": ("lead id",),
    "lead.firstName": ("first name", "lead first name"),
    "lead.lastName": ("last name", "lead last name"),
}  # fmt: skip
TIME_TARGETS = {"startTime", "endTime", "remoteCreatedAt", "remoteUpdatedAt", "opportunity.closedAt"}
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
    "demo": "MEETING", "task": "CALL", "sms": "TEXT", "text": "TEXT",
}  # fmt: skip
FORMATS = (
    "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %I:%M %p", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d",
)  # fmt: skip


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def match_headers(headers: Sequence[str]) -> dict[str, str]:
    """target -> header: exact synonyms first, then the closest fuzzy ones (ratio >= 0.85);
    each header and each target used once."""
    scored: list[tuple[float, int, str, str]] = []
    for target, names in SYNONYMS.items():
        for h in headers:
            n = _norm(h)
            if not n:
                continue
            best = max(1.0 if n == s else difflib.SequenceMatcher(None, n, s).ratio() for s in names)
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


def guess_format(samples: Sequence[str]) -> str | None:
    """The common format that parses the most samples (at least 90% of them; a few bad cells are
    the file's problem, not the format's). None: ISO 8601, or nothing fits."""
    values = [s.strip() for s in samples if s.strip()]
    if not values:
        return None
    best, best_n = None, 0
    for fmt in FORMATS:
        n = 0
        for v in values:
            try:
                dt.datetime.strptime(v, fmt)
                n += 1
            except ValueError:
                pass
        if n > best_n:
            best, best_n = fmt, n
    return best if best_n >= 0.9 * len(values) else None


def render(src: Source, samples: dict[str, list[str]], label: str) -> str:
    """The starter mapping YAML for ``src``, given up to N sample cells per header."""
    matched = match_headers(src.headers)
    lines = [
        f"# Starter mapping for {label}, written by `bulk-sync init-mapping`.",
        "# Check every line, then run `bulk-sync validate FILE --mapping THIS_FILE`.",
        "# The language: mappings/README.md. TODO marks what needs your decision.",
        "version: 1",
        f"description: {_yaml_str('Generated from ' + src.path.name)}",
    ]
    if src.header_row > 1:
        lines.append(f"header_row: {src.header_row}")
    lines.append("fields:")
    if "externalId" not in matched:
        lines.append(
            "  externalId: {column: TODO, required: true}   # TODO: the column with each row's unique id"
        )
    zone_todo = "America/New_York"
    for target in SYNONYMS:
        header = matched.get(target)
        if header is None:
            continue
        col = _yaml_str(header)
        if target == "externalId":
            lines.append(f"  externalId: {{column: {col}, required: true}}")
        elif target in TIME_TARGETS:
            fmt = guess_format(samples.get(header, []))
            fmt_part = f"format: {_yaml_str(fmt)}, " if fmt else ""
            lines.append(f"  {target}:")
            lines.append(f"    column: {col}")
            lines.append(
                f"    datetime: {{{fmt_part}timezone: {zone_todo}}}   # TODO: the zone the export's times are in"
            )
            if target == "startTime":
                lines.append("  startTimeLocalized:")
                lines.append(f"    column: {col}")
                lines.append(f"    datetime: {{{fmt_part}timezone: {zone_todo}}}")
        elif target in ENUMS:
            values = list(dict.fromkeys(v.strip() for v in samples.get(header, []) if v.strip()))[:20]
            lines.append(f"  {target}:")
            lines.append(f"    column: {col}")
            if values:
                lines.append("    map:   # TODO: check; SIRO accepts " + ", ".join(ENUMS[target]))
                for v in values:
                    guess = ENUM_HINTS.get(_norm(v)) or next(
                        (c for c in ENUMS[target] if c.casefold() == _norm(v)), None
                    )
                    if guess is not None and guess not in ENUMS[target]:
                        guess = None
                    lines.append(f"      {_yaml_str(v)}: {guess or 'null'}" + ("" if guess else "   # TODO"))
        elif target == "opportunity.amount":
            lines.append(
                f"  {target}: {{column: {col}}}   # currency symbols and thousands separators are fine"
            )
        else:
            lines.append(f"  {target}: {col}")
    for group, key in (("engagementUsers[0]", "externalId"), ("opportunity", "externalId"),
                       ("contact", "externalId"), ("lead", "externalId")):  # fmt: skip
        if any(t.startswith(group + ".") for t in matched) and f"{group}.{key}" not in matched:
            lines.append(f"  # TODO: SIRO needs {group}.{key} when {group} is sent; map a column to it")
    unplaced = [h for h in src.headers if h not in matched.values()]
    if unplaced:
        lines.append("")
        lines.append("# Columns not placed (map them by hand if SIRO should get them):")
        lines += [f"#   {h}" for h in unplaced]
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """A YAML scalar that stays a string (quoted when YAML would read it otherwise)."""
    if (
        re.fullmatch(r"[A-Za-z][A-Za-z0-9 _()/.-]*", text)
        and text.lower() not in {"yes", "no", "on", "off", "true", "false", "null"}
        and not text.endswith(" ")
    ):
        return text
    return "'" + text.replace("'", "''") + "'"
