"""init-mapping, starter: the starter mapping written as YAML, from a preset or from the matched
headers, with a TODO for every decision only the person can make.
"""

from __future__ import annotations

import re

from ..load import Source
from .match import (
    ENUMS,
    SAMPLE_ROWS,
    SYNONYMS,
    TIME_TARGETS,
    duration_unit,
    enum_guess,
    match_headers,
    people_column,
    unique_id_column,
    yaml_str,
)
from .preset import AMBIGUOUS_NOTE, Preset, best_preset, from_preset
from .resource import keep_for_opportunities, renamed
from .times import date_and_time, settled_orders, template_lines, time_lines


def render(src: Source, samples: dict[str, list[str]], label: str, resource: str | None = None) -> str:
    """The starter mapping YAML for ``src``, given up to SAMPLE_ROWS sample cells per header;
    ``resource``: what each row becomes (engagements when not given, unless a preset says)."""
    found = best_preset(src.headers, resource)
    if found is not None and not found[1]:
        return from_preset(found[0], label)
    return _Starter(src, samples, label, found, resource or "engagements").text()


class _Starter:
    def __init__(
        self,
        src: Source,
        samples: dict[str, list[str]],
        label: str,
        near: tuple[Preset, set[str]] | None,
        resource: str,
    ) -> None:
        self.src, self.samples, self.label, self.near = src, samples, label, near
        self.opportunities = resource == "opportunities"
        self.lines: list[str] = []
        self.placed: dict[str, str] = {}  # target -> header (or template)
        self.orders = settled_orders(src.headers, samples)  # day/month order -> (header, the cell)

    def text(self) -> str:
        src = self.src
        matched = match_headers(src.headers)
        if not self.opportunities:
            date_and_time(matched, src.headers, self.samples)
        self._people(matched)
        self._enums_by_content(matched)
        if self.opportunities:
            keep_for_opportunities(matched, src.headers)
        if "externalId" not in matched:
            in_templates = {h for v in matched.values() for h in re.findall(r"\{([^{}]+)\}", v)}
            by_content = unique_id_column(src.headers, self.samples, in_templates)
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
        lines.append(AMBIGUOUS_NOTE)
        lines.append("version: 1")
        if self.opportunities:
            lines.append("resource: opportunities   # each row becomes a SIRO opportunity")
        lines.append(f"description: {yaml_str('Generated from ' + src.path.name)}")
        if src.header_span == 2:  # `Start` merged over `Date | Time`: one name per column
            rows = f"[{src.header_row - 1}, {src.header_row}]"
            lines.append(
                f"header_rows: {rows}   # the header spans two rows: 'Start' over 'Date' is 'Start Date'"
            )
        elif src.header_row > 1:
            lines.append(f"header_row: {src.header_row}")
        lines.append("fields:")
        if "externalId" not in matched:
            lines.append(
                "  externalId: {column: TODO, required: true}   # the column with each row's unique id"
            )
        for target in (*SYNONYMS, "lastActivityAt"):
            if target in matched:
                self._field(target, matched[target], matched)
        self._required_parts(matched)
        unplaced = [h for h in src.headers if h not in self._used()]
        if unplaced:
            lines.append("")
            lines.append("# Columns not placed (map them by hand if SIRO should get them):")
            lines += [f"#   {h}" for h in unplaced]
        if not any("ambiguous: error" in line for line in lines):
            lines.remove(AMBIGUOUS_NOTE)  # every time carries its offset: nothing is ambiguous
        return "\n".join(renamed(lines) if self.opportunities else lines) + "\n"

    def _used(self) -> set[str]:
        used = set()
        for v in self.placed.values():
            v = v.split(":", 1)[1] if v.startswith(("person:", "people:", "duration:")) else v
            used.update(re.findall(r"\{([^{}]+)\}", v) or [v])
        return used

    # -- fields ------------------------------------------------------------------------

    def _field(self, target: str, header: str, matched: dict[str, str]) -> None:
        col = yaml_str(header)
        add = self.lines.append
        cells = self.samples.get(header, [])
        if target == "externalId":
            add(f"  externalId: {{column: {col}, required: true}}")
        elif target in ("startTime", "endTime") and header.startswith("{"):
            self.lines += template_lines(target, header, self.samples, self.orders)
        elif target == "endTime" and header.startswith("duration:"):
            unit = duration_unit(header[9:])
            add(f"  endTime: {{column: {yaml_str(header[9:])}, duration: {{from: startTime{unit}}}}}")
        elif target in TIME_TARGETS:
            self.lines += time_lines(target, col, cells, self.orders)
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
                f"  {target}: {{column: {yaml_str(column)}{first}, parse: name_email"
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
            add(f"      {yaml_str(v)}: {guesses[v] or 'TODO'}")
        return True

    # -- what the cells show -------------------------------------------------------------

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
                    f"  {user}.externalId: {{column: {yaml_str(email)}, lower: true}}   # the rep's email as their id"
                )
            elif name is not None:
                add(
                    f"  {user}.externalId: {yaml_str(name)}   # the export names the rep only: the name is their id"
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
                f"  contact.externalId: {{column: {yaml_str(contact_email)}, lower: true}}   # the contact's email as their id"
            )
            self.placed["contact.externalId"] = contact_email
        for group in ("contact", "lead") if self.opportunities else ("opportunity", "contact", "lead"):
            if (
                any(t.startswith(group + ".") for t in self.placed)
                and f"{group}.externalId" not in self.placed
            ):
                add(f"  {group}.externalId: {{column: TODO}}   # SIRO needs it whenever {group} is sent")


def starter(src: Source, label: str, resource: str | None = None) -> str:
    """Read up to SAMPLE_ROWS rows of ``src`` and return its starter mapping (``resource``:
    engagements or opportunities; not given: engagements, or what a preset that fits says)."""
    samples: dict[str, list[str]] = {h: [] for h in src.headers}
    seen = 0
    for chunk in src.chunks():
        take = SAMPLE_ROWS - seen
        for h in src.headers:
            samples[h] += chunk.cells(h)[:take]
        seen += min(len(chunk), take)
        if seen >= SAMPLE_ROWS:
            break
    return render(src, samples, label, resource)
