"""``bulk-sync init-mapping FILE``: a starter mapping for a sample export.

Two ways, tried in order:

* **a preset fits**: when the file has every column a preset reads (its optional ones aside), the
  starter *is* that preset, with the decisions only the person can make left as ``TODO`` (the
  time zone of the export's times);
* **otherwise** the headers are matched to SIRO fields by synonyms (and by what the cells hold:
  an id column is unique and never empty, a "Name (email)" column gives a rep's email and name, a
  date column beside a time column makes one start, a duration column makes the end), date formats
  are read from up to 1,000 rows (a few bad cells do not drop a format; a day/month order that
  the cells cannot settle is a ``TODO``), and enum columns get a ``map`` of the values found.

Audit columns ("Created", "Last modified", "Update time") are never taken for the start or end.
Whatever is left for the person is a ``TODO`` *value*, which ``validate`` and ``run`` refuse (exit
2, listing each with its line), so a starter cannot be run by accident with a guess in it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .load import Source

SAMPLE_ROWS = 1000  # rows read to settle formats and values
PRESET_SHARE = 0.6  # a preset "looks like" the file from this share of its columns on

# target -> header synonyms (normalised: lower case, words separated by one space)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "externalId": ("id", "activity id", "meeting id", "event id", "appointment id", "record id",
                   "engagement id", "external id", "call id", "task id", "engagement external id", "ref",
                   "reference", "booking id", "booking ref", "event uuid", "meeting uuid", "uid"),
    "subject": ("subject", "title", "meeting title", "meeting name", "activity subject", "call title",
                "appointment title", "event subject", "event name", "event type name", "topic", "what"),
    "content": ("description", "notes", "comments", "body", "meeting notes", "call notes", "note",
                "full comments", "meeting body", "call body", "meeting description", "details"),
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
                                "host name", "consultant"),
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
TIME_TARGETS = ("startTime", "endTime", "remoteCreatedAt", "remoteUpdatedAt", "opportunity.closedAt")
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
)
TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def _names(header: str) -> list[str]:
    """A header's names to match: the whole, without a parenthesised note ("(Do Not Modify) Modified
    On", "Duration (seconds)"), and the part after a group prefix ("Activity - Subject")."""
    out = [_norm(header)]
    bare = re.sub(r"\([^)]*\)", " ", header)
    if bare != header:
        out.append(_norm(bare))
    for sep in (" - ", ": ", " — "):
        if sep in header:
            out.append(_norm(header.split(sep, 1)[1]))
    return out


def _is_audit(header: str) -> bool:
    n = _norm(header)
    return any(w in n for w in AUDIT_WORDS)


def match_headers(headers: Sequence[str]) -> dict[str, str]:
    """target -> header: exact synonyms first, then the closest fuzzy ones (ratio >= 0.85);
    each header and each target used once; audit columns never start or end an engagement."""
    scored: list[tuple[float, int, str, str]] = []
    for target, names in SYNONYMS.items():
        for h in headers:
            if target in ("startTime", "endTime") and _is_audit(h):
                continue
            best = 0.0
            for n in _names(h):
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


# --------------------------------------------------------------------------- what the cells hold


@dataclass
class Formats:
    """What a column's cells say about their date/time format."""

    format: str | list[str] | None = None  # None: ISO 8601 (no format needed)
    todo: str | None = None  # why the format is left as a TODO
    offsets: bool = False  # every time carries its own offset (Z, +02:00): the zone does not matter


def guess_formats(samples: Sequence[str], formats: Sequence[str] = DATE_TIME_FORMATS) -> Formats | None:
    """The format that reads the column, from its cells: the one that parses the most, as long as
    it parses all but a few (max(1, 2 %)) of them; None when none does. When two formats read the
    same cells as different dates (day and month both 12 or less) the choice is a TODO."""
    values = [s.strip() for s in samples if s.strip()]
    if not values:
        return None
    allowed = max(1, len(values) // 50)
    iso = [_iso(v) for v in values]
    if sum(k is not None for k in iso) >= len(values) - allowed:
        return Formats(None, offsets=all(k == "aware" for k in iso if k is not None))
    fits: dict[str, list[dt.datetime | None]] = {}
    for fmt in formats:
        parsed = [_strptime(v, fmt) for v in values]
        if sum(p is not None for p in parsed) >= len(values) - allowed:
            fits[fmt] = parsed
    if not fits:
        return None
    best = max(fits, key=lambda f: sum(p is not None for p in fits[f]))
    rivals = [f for f in fits if f != best and _differs(fits[f], fits[best])]
    if rivals:
        return Formats(
            best,
            todo=f"{values[0]!r} reads as {fits[best][0]:%Y-%m-%d} with {best!r} and as "
            f"{fits[rivals[0]][0]:%Y-%m-%d} with {rivals[0]!r}: write the one the export uses",
        )
    return Formats(best)


def _strptime(text: str, fmt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, fmt)
    except ValueError:
        return None


def _differs(a: list[dt.datetime | None], b: list[dt.datetime | None]) -> bool:
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return bool(both) and any(x != y for x, y in both) and len(both) >= len(a) // 2


def _iso(text: str) -> str | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", text):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return "aware" if parsed.tzinfo is not None else "naive"


_PERSON = re.compile(r"^[^<>()@]*[<(]\s*[^\s<>()]+@[^\s<>()]+\s*[>)]\s*$")
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


def _people_column(cells: Sequence[str]) -> tuple[bool, bool]:
    """(every filled cell is one "Name (email)" / "Name <email>", some cells hold several joined by ;)"""
    filled = [c.strip() for c in cells if c.strip()]
    if not filled:
        return False, False
    parts = [p.strip() for c in filled for p in c.split(";") if p.strip()]
    people = all(_PERSON.match(p) or _EMAIL.match(p) for p in parts) and any(_PERSON.match(p) for p in parts)
    return people, any(";" in c for c in filled)


def _unique_id_column(headers: Sequence[str], samples: dict[str, list[str]], taken: set[str]) -> str | None:
    """A column whose cells are all filled and all different, and look like ids (no spaces; digits
    or a code), preferring one whose name says id."""
    found = []
    for h in headers:
        cells = [c.strip() for c in samples.get(h, [])]
        if h in taken or len(cells) < 2 or not all(cells) or len(set(cells)) != len(cells):
            continue
        if all(" " not in c and any(ch.isdigit() for ch in c) for c in cells) and not _dates(cells):
            found.append(h)
    found.sort(key=lambda h: (not re.search(r"\b(id|ref|uuid|key|no|number)\b", _norm(h)), headers.index(h)))
    return found[0] if found else None


def _dates(cells: Sequence[str]) -> bool:
    return guess_formats(cells, DATE_TIME_FORMATS + DATE_FORMATS) is not None


# --------------------------------------------------------------------------- presets


@dataclass
class Preset:
    name: str
    text: str
    needed: set[str] = field(default_factory=set)  # the columns it must find
    optional: set[str] = field(default_factory=set)


def presets() -> list[Preset]:
    """The shipped presets (package data, or the checkout's mappings/ folder)."""
    texts: dict[str, str] = {}
    try:
        for p in resources.files("bulk_sync.presets").iterdir():
            if p.name.endswith(".yaml"):
                texts[p.name[:-5]] = p.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        folder = Path(__file__).resolve().parent.parent / "mappings"
        for p in sorted(folder.glob("*.yaml")):
            texts[p.stem] = p.read_text(encoding="utf-8")
    out = []
    for name, text in sorted(texts.items()):
        if name == "engagements":
            continue  # the example file's mapping, not an export's
        data = yaml.safe_load(text)
        preset = Preset(name, text)
        for spec in (data.get("fields") or {}).values():
            spec = {"column": spec} if isinstance(spec, str) else spec
            cols = (
                [spec["column"]]
                if "column" in spec
                else re.findall(r"\{([^{}]+)\}", spec.get("template", ""))
            )
            (preset.optional if spec.get("optional") else preset.needed).update(cols)
        preset.needed.update(r["column"] for r in data.get("skip") or [])
        preset.optional -= preset.needed
        out.append(preset)
    return out


def best_preset(headers: Sequence[str]) -> tuple[Preset, set[str]] | None:
    """The preset that reads the most of these headers, with the columns it needs and the file lacks
    (empty: it fits); None when none looks like the file."""
    have = {_norm(h) for h in headers}
    best: tuple[float, Preset, set[str]] | None = None
    for preset in presets():
        missing = {c for c in preset.needed if _norm(c) not in have}
        share = 1 - len(missing) / max(1, len(preset.needed))
        if share >= PRESET_SHARE and (best is None or share > best[0]):
            best = (share, preset, missing)
    return (best[1], best[2]) if best else None


def _from_preset(preset: Preset, label: str) -> str:
    """The preset as a starter: its time zones become TODOs (only the person knows the export's),
    UTC aside (columns whose times carry their own offset)."""
    text = re.sub(r"(timezone:\s*)(?!UTC\b)[A-Za-z_/+-]+(\s*[,}]|\s*$)", r"\1TODO\2", preset.text, flags=re.M)
    head = [
        f"# Starter mapping for {label},",
        f"# written by `bulk-sync init-mapping`: the file has every column the preset {preset.name!r}",
        "# reads, so this is that preset. TODO marks what only you can decide: `validate` and `run`",
        "# refuse the file until every TODO is replaced.",
    ]
    return "\n".join(head) + "\n" + text


# --------------------------------------------------------------------------- the generic starter


def render(src: Source, samples: dict[str, list[str]], label: str) -> str:
    """The starter mapping YAML for ``src``, given up to SAMPLE_ROWS sample cells per header."""
    found = best_preset(src.headers)
    if found is not None and not found[1]:
        return _from_preset(found[0], label)
    return _Starter(src, samples, label, found).text()


class _Starter:
    def __init__(
        self, src: Source, samples: dict[str, list[str]], label: str, near: tuple[Preset, set[str]] | None
    ) -> None:
        self.src, self.samples, self.label, self.near = src, samples, label, near
        self.lines: list[str] = []
        self.placed: dict[str, str] = {}  # target -> header (or template)

    def text(self) -> str:
        src = self.src
        matched = match_headers(src.headers)
        self._date_and_time(matched)
        self._people(matched)
        self._enums_by_content(matched)
        if "externalId" not in matched:
            by_content = _unique_id_column(src.headers, self.samples, set())
            if by_content is not None:
                for t in [t for t, h in matched.items() if h == by_content]:
                    del matched[t]  # an id column unique on every row is the record's id first
                matched["externalId"] = by_content
        lines = self.lines
        lines += [
            f"# Starter mapping for {self.label},",
            "# written by `bulk-sync init-mapping`.",
            "# Check every line. TODO marks what needs your decision: `validate` and `run` refuse the",
            "# file until each one is replaced. The language: mappings/README.md.",
        ]
        if self.near is not None:
            preset, missing = self.near
            lines.append(
                f"# The file looks like the preset {preset.name!r} but lacks its columns "
                f"{', '.join(sorted(missing))}: compare with mappings/{preset.name}.yaml."
            )
        lines += ["version: 1", f"description: {_yaml_str('Generated from ' + src.path.name)}"]
        if src.header_row > 1:
            lines.append(f"header_row: {src.header_row}")
        lines.append("fields:")
        if "externalId" not in matched:
            lines.append(
                "  externalId: {column: TODO, required: true}   # the column with each row's unique id"
            )
        for target in SYNONYMS:
            if target in matched:
                self._field(target, matched[target], matched)
        self._required_parts(matched)
        unplaced = [h for h in src.headers if h not in self._used()]
        if unplaced:
            lines.append("")
            lines.append("# Columns not placed (map them by hand if SIRO should get them):")
            lines += [f"#   {h}" for h in unplaced]
        return "\n".join(lines) + "\n"

    def _used(self) -> set[str]:
        used = set()
        for v in self.placed.values():
            v = v.split(":", 1)[1] if v.startswith(("person:", "people:", "duration:")) else v
            used.update(re.findall(r"\{([^{}]+)\}", v) or [v])
        return used

    # -- fields ------------------------------------------------------------------------

    def _field(self, target: str, header: str, matched: dict[str, str]) -> None:
        col = _yaml_str(header)
        add = self.lines.append
        cells = self.samples.get(header, [])
        if target == "externalId":
            add(f"  externalId: {{column: {col}, required: true}}")
        elif target in ("startTime", "endTime") and header.startswith("{"):
            self._template_time(target, header)
        elif target == "endTime" and header.startswith("duration:"):
            unit = _duration_unit(header[9:])
            add(f"  endTime: {{column: {_yaml_str(header[9:])}, duration: {{from: startTime{unit}}}}}")
        elif target in TIME_TARGETS:
            self._time(target, col, cells)
        elif target in ENUMS:
            if not self._enum(target, col, cells):
                return  # no value of it is one of SIRO's: not this field (it is listed as not placed)
            if target == "engagementType.activityType" and "engagementType.name" not in matched:
                add(f"  engagementType.name: {col}   # SIRO requires a name with the type")
        elif target == "engagementUsers[]":
            add(f"  engagementUsers[]: {{column: {col}, split: ';', parse: name_email, lower: true}}")
        elif header.startswith(("person:", "people:")):  # "Name (email)" cells: the part each target needs
            kind, column = header.split(":", 1)
            first = ", first_of: ';'" if kind == "people" else ""
            add(
                f"  {target}: {{column: {_yaml_str(column)}{first}, parse: name_email"
                + (", lower: true}" if not target.endswith(".name") else "}")
                + (
                    "   # the first of the people in the cell"
                    if first and target.endswith("externalId")
                    else ""
                )
            )
        elif target == "opportunity.amount":
            add(
                f"  {target}: {{column: {col}}}   # currency symbols and grouping are fine; the decimal mark is read from the cells"
            )
        elif target.endswith(("email", "emailAddresses[0]")):
            add(f"  {target}: {{column: {col}, lower: true}}")
        else:
            add(f"  {target}: {col}")
        self.placed[target] = header

    def _time(self, target: str, col: str, cells: list[str]) -> None:
        found = guess_formats(cells, DATE_TIME_FORMATS + DATE_FORMATS)
        add = self.lines.append
        offsets = found is not None and found.offsets
        fmt = ""
        if found is None:
            fmt = "format: TODO, "
        elif found.format is not None:
            fmt = f"format: {'TODO' if found.todo else _yaml_str(str(found.format))}, "
        add(f"  {target}:")
        add(f"    column: {col}")
        if found is not None and found.todo:
            add(f"    # format: {found.todo}")
        if found is None:
            add("    # no date format reads these cells: write one (e.g. '%m/%d/%Y %I:%M %p')")
        zone = (
            "UTC}   # every time carries its own offset"
            if offsets
            else "TODO}   # the zone of the export's times"
        )
        add(f"    datetime: {{{fmt}timezone: {zone}")
        if target == "startTime":
            add("  startTimeLocalized:")
            add(f"    column: {col}")
            add(f"    datetime: {{{fmt.rstrip(', ')}}}" if fmt else "    datetime: {}")

    def _template_time(self, target: str, template: str) -> None:
        add = self.lines.append
        date, time_ = re.findall(r"\{([^{}]+)\}", template)
        dates = guess_formats(self.samples.get(date, []), DATE_FORMATS)
        times = guess_formats([t for t in self.samples.get(time_, []) if t.strip()], TIME_FORMATS)
        dfmt = str(dates.format) if dates and dates.format else "TODO"
        tfmt = str(times.format) if times and times.format else "%H:%M"
        formats = f"[{_yaml_str(dfmt + ' ' + tfmt)}, {_yaml_str(dfmt)}]"
        add(f"  {target}:")
        add(f"    template: {_yaml_str(template)}   # the date and the time are in two columns")
        add(f"    datetime: {{format: {formats}, timezone: TODO}}")
        if target == "startTime":
            add("  startTimeLocalized:")
            add(f"    template: {_yaml_str(template)}")
            add(f"    datetime: {{format: {formats}}}")

    def _enum(self, target: str, col: str, cells: list[str]) -> bool:
        """A ``map`` of the column's values to SIRO's; False (nothing written) when values exist
        and none of them is one of SIRO's: the column is then something else ("Outcome":
        Completed/Rescheduled is not a deal's OPEN/WON/LOST)."""
        add = self.lines.append
        values = list(dict.fromkeys(v.strip() for v in cells if v.strip()))[:30]
        guesses = {v: _enum_guess(target, v) for v in values}
        if values and not any(guesses.values()):
            return False
        add(f"  {target}:")
        add(f"    column: {col}")
        if not values:
            return True
        add("    map:   # SIRO accepts " + ", ".join(ENUMS[target]) + "; TODO: the values it could not place")
        for v in values:
            add(f"      {_yaml_str(v)}: {guesses[v] or 'TODO'}")
        return True

    # -- what the cells show -------------------------------------------------------------

    def _date_and_time(self, matched: dict[str, str]) -> None:
        """A start given as a date column and a time column (Pipedrive's "Due date" + "Due time")
        becomes one template; a duration column beside it makes the end."""
        headers = self.src.headers
        dates = [
            h
            for h in headers
            if "date" in _norm(h) and not _is_audit(h) and _all_parse(self.samples.get(h, []), DATE_FORMATS)
        ]
        times = [
            h
            for h in headers
            if "time" in _norm(h) and not _is_audit(h) and _all_parse(self.samples.get(h, []), TIME_FORMATS)
        ]
        start = matched.get("startTime")
        if dates and times and (start is None or start in dates or start in times):
            matched["startTime"] = f"{{{dates[0]}}} {{{times[0]}}}"
            for h in (dates[0], times[0]):
                for t, v in list(matched.items()):
                    if v == h:
                        del matched[t]
        durations = [h for h in headers if "duration" in _norm(h)]
        if "startTime" in matched and "endTime" not in matched and durations:
            matched["endTime"] = "duration:" + durations[0]

    def _enums_by_content(self, matched: dict[str, str]) -> None:
        """A column whose values are SIRO's words for an enum not yet placed (CallType:
        Inbound/Outbound is a direction; TaskSubtype: Call/Email an activity type) is that
        enum, even under a name that says nothing (or that matched a plain text field)."""
        for target in ENUMS:
            if target in matched:
                continue
            for h in self.src.headers:
                owner = next((t for t, v in matched.items() if v == h), None)
                if owner not in (None, "engagementType.name", "subject"):
                    continue
                values = {v.strip() for v in self.samples.get(h, []) if v.strip()}
                known = sum(_enum_guess(target, v) is not None for v in values)
                if len(values) >= 2 and known >= 0.6 * len(values):
                    if owner is not None:
                        del matched[owner]
                    matched[target] = h
                    break

    def _people(self, matched: dict[str, str]) -> None:
        """A rep column of "Name (email)" cells gives the rep's id, email and name; a column of
        several such people is a list of engagement users."""
        for target in ("engagementUsers[0].name", "engagementUsers[0].email"):
            header = matched.get(target)
            if header is None or header.startswith("person:"):
                continue
            people, several = _people_column(self.samples.get(header, []))
            if people and not several:
                for part in ("externalId", "email", "name"):
                    matched[f"engagementUsers[0].{part}"] = "person:" + header
        contact = matched.get("contact.name") or matched.get("contact.emailAddresses[0]")
        if contact is not None and not contact.startswith("person:"):
            people, several = _people_column(self.samples.get(contact, []))
            if people:
                tag = ("people:" if several else "person:") + contact
                for part in ("externalId", "emailAddresses[0]", "name"):
                    matched[f"contact.{part}"] = tag
        attendees = matched.get("engagementUsers[]")
        if attendees is not None and not _people_column(self.samples.get(attendees, []))[0]:
            del matched["engagementUsers[]"]

    def _required_parts(self, matched: dict[str, str]) -> None:
        """An object SIRO needs an id for: the rep's email stands in for the rep's id; the others
        are TODOs (the mapping is refused until they are filled)."""
        add = self.lines.append
        user = "engagementUsers[0]"
        if any(t.startswith(user + ".") for t in self.placed) and f"{user}.externalId" not in self.placed:
            email = self.placed.get(f"{user}.email")
            name = self.placed.get(f"{user}.name")
            if email is not None:
                add(
                    f"  {user}.externalId: {{column: {_yaml_str(email)}, lower: true}}   # the rep's email as their id"
                )
            elif name is not None:
                add(
                    f"  {user}.externalId: {_yaml_str(name)}   # the export names the rep only: the name is their id"
                )
            else:
                add(f"  {user}.externalId: {{column: TODO}}")
        if "engagementType.name" in self.placed and "engagementType.activityType" not in self.placed:
            add(
                "  engagementType.activityType: {value: TODO}   # SIRO requires it with the name: "
                + ", ".join(ENUMS["engagementType.activityType"])
            )
        contact_email = self.placed.get("contact.emailAddresses[0]")
        if contact_email is not None and "contact.externalId" not in self.placed:
            add(
                f"  contact.externalId: {{column: {_yaml_str(contact_email)}, lower: true}}   # the contact's email as their id"
            )
            self.placed["contact.externalId"] = contact_email
        for group in ("opportunity", "contact", "lead"):
            if (
                any(t.startswith(group + ".") for t in self.placed)
                and f"{group}.externalId" not in self.placed
            ):
                add(f"  {group}.externalId: {{column: TODO}}   # SIRO needs it whenever {group} is sent")


def _enum_guess(target: str, value: str) -> str | None:
    guess = ENUM_HINTS.get(_norm(value)) or next(
        (c for c in ENUMS[target] if c.casefold() == _norm(value)), None
    )
    return guess if guess in ENUMS[target] else None


def _duration_unit(header: str) -> str:
    """The unit of a duration column's bare numbers, from its name ("Duration (seconds)")."""
    n = _norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header))  # "CallDurationInSeconds" too
    for words, unit in (
        (("second", "seconds", "sec", "secs", "s"), "seconds"),
        (("hour", "hours", "hr", "hrs", "h"), "hours"),
    ):
        if any(re.search(rf"\b{w}\b", n) for w in words):
            return f", unit: {unit}"
    return ""  # minutes, the default


def _all_parse(cells: Sequence[str], formats: Sequence[str]) -> bool:
    """Every filled cell but a few (max(1, 2 %)) reads with one of ``formats``."""
    values = [c.strip() for c in cells if c.strip()]
    allowed = max(1, len(values) // 50)
    return len(values) > allowed and any(
        sum(_strptime(v, f) is not None for v in values) >= len(values) - allowed for f in formats
    )


def _yaml_str(text: str) -> str:
    """A YAML scalar that stays a string (quoted when YAML would read it otherwise)."""
    if (
        re.fullmatch(r"[A-Za-z][A-Za-z0-9 _()/.-]*", text)
        and text.lower() not in {"yes", "no", "on", "off", "true", "false", "null", "todo"}
        and not text.endswith(" ")
    ):
        return text
    return "'" + text.replace("'", "''") + "'"


def starter(src: Source, label: str) -> str:
    """Read up to SAMPLE_ROWS rows of ``src`` and return its starter mapping."""
    samples: dict[str, list[str]] = {h: [] for h in src.headers}
    seen = 0
    for chunk in src.chunks():
        take = SAMPLE_ROWS - seen
        for h in src.headers:
            samples[h] += chunk.frame[h].tolist()[:take]
        seen += min(len(chunk), take)
        if seen >= SAMPLE_ROWS:
            break
    return render(src, samples, label)
