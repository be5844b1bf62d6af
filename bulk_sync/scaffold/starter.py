"""init-mapping, starter: the starter mapping written as YAML, from a preset or from the matched
headers, with a TODO for every decision only the person can make.
"""

from __future__ import annotations

import re

from ..load import Source
from .match import (
    DATE_FORMATS,
    DATE_TIME_FORMATS,
    ENUMS,
    SAMPLE_ROWS,
    SYNONYMS,
    TIME_FORMATS,
    TIME_TARGETS,
    all_parse,
    duration_unit,
    enum_guess,
    guess_formats,
    is_audit,
    match_headers,
    norm,
    people_column,
    unique_id_column,
)
from .preset import Preset, best_preset, from_preset


def render(src: Source, samples: dict[str, list[str]], label: str) -> str:
    """The starter mapping YAML for ``src``, given up to SAMPLE_ROWS sample cells per header."""
    found = best_preset(src.headers)
    if found is not None and not found[1]:
        return from_preset(found[0], label)
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
            by_content = unique_id_column(src.headers, self.samples, set())
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
            unit = duration_unit(header[9:])
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
        guesses = {v: enum_guess(target, v) for v in values}
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
            if "date" in norm(h) and not is_audit(h) and all_parse(self.samples.get(h, []), DATE_FORMATS)
        ]
        times = [
            h
            for h in headers
            if "time" in norm(h) and not is_audit(h) and all_parse(self.samples.get(h, []), TIME_FORMATS)
        ]
        start = matched.get("startTime")
        if dates and times and (start is None or start in dates or start in times):
            matched["startTime"] = f"{{{dates[0]}}} {{{times[0]}}}"
            for h in (dates[0], times[0]):
                for t, v in list(matched.items()):
                    if v == h:
                        del matched[t]
        durations = [h for h in headers if "duration" in norm(h)]
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
                known = sum(enum_guess(target, v) is not None for v in values)
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
            people, several = people_column(self.samples.get(header, []))
            if people and not several:
                for part in ("externalId", "email", "name"):
                    matched[f"engagementUsers[0].{part}"] = "person:" + header
        contact = matched.get("contact.name") or matched.get("contact.emailAddresses[0]")
        if contact is not None and not contact.startswith("person:"):
            people, several = people_column(self.samples.get(contact, []))
            if people:
                tag = ("people:" if several else "person:") + contact
                for part in ("externalId", "emailAddresses[0]", "name"):
                    matched[f"contact.{part}"] = tag
        attendees = matched.get("engagementUsers[]")
        if attendees is not None and not people_column(self.samples.get(attendees, []))[0]:
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
            samples[h] += chunk.cells(h)[:take]
        seen += min(len(chunk), take)
        if seen >= SAMPLE_ROWS:
            break
    return render(src, samples, label)
