"""init-mapping on real export shapes: the starter it writes, with only its TODOs filled (the answers
a person would give, listed per file below), validates the same rows as the hand-written mapping.

The files: each preset's sample export (the starter is the preset, recognised from the headers) and
seven export-shaped files of other CRMs and hand-made sheets (the example file and
tests/data/exports/*.csv, each with its hand-written mapping beside it). The same starters are also
made without preset recognition, to measure the generic path on the preset samples.

Print the table quoted in docs/reference/mapping.md:  python tests/test_init_mapping.py
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import ROOT, outcomes

from bulk_sync import scaffold
from bulk_sync.errors import MappingError
from bulk_sync.load import open_source
from bulk_sync.mapping import parse_mapping
from bulk_sync.payload import target_catalog
from bulk_sync.scaffold import match, preset

EXPORTS = ROOT / "tests" / "data" / "exports"
DROP = object()  # answer: delete the TODO line (a value left unmapped: its rows are invalid)


@dataclass(frozen=True)
class Case:
    name: str
    file: Path
    hand: Path
    answers: dict[str, Any]  # "field/key" or "key" -> the value to write for its TODO


def _preset(name: str, zone: str) -> Case:
    return Case(
        name,
        ROOT / "example_data" / "presets" / f"{name}.csv",
        ROOT / "mappings" / f"{name}.yaml",
        {"timezone": zone},
    )


def _export(name: str, **answers: Any) -> Case:
    return Case(name, EXPORTS / f"{name}.csv", EXPORTS / f"{name}.yaml", answers)


CASES = [
    _preset("salesforce_events_report", "America/Chicago"),
    _preset("salesforce_tasks_export", "America/Chicago"),
    _preset("hubspot_meetings_export", "America/New_York"),
    _preset("hubspot_calls_export", "America/New_York"),
    _preset("pipedrive_activities_export", "Europe/Berlin"),
    Case(
        "engagements (example)",
        ROOT / "example_data" / "engagements.csv",
        ROOT / "mappings" / "engagements.yaml",
        {"timezone": "America/Chicago"},
    ),
    _export("zoho_meetings", timezone="America/Los_Angeles"),
    _export("dynamics_appointments", timezone="America/Chicago"),
    _export("calendly_events", timezone="America/Chicago"),
    _export("freshsales_appointments", timezone="America/New_York"),
    _export("handmade_visits", timezone="Europe/London"),
    _export("close_calls"),
]


def fill(text: str, answers: dict[str, Any], hand: dict[str, Any] | None = None) -> str:
    """Replace each TODO value of a starter as the person would: with the answer given for its field
    and key, else with what the hand-written mapping (``hand``: its ``fields``) says for it (its
    column, its format, its value for an enum cell: a cell it leaves unmapped is a line deleted,
    so such rows stay invalid). A TODO with no answer either way fails the test: the starter asked
    something the case did not expect."""
    out: list[str] = []
    field = ""
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        top = re.match(r"^  (\S[^:]*):", line)
        if top:
            field = top.group(1)
        if "TODO" not in code:
            out.append(line)
            continue
        keys = re.findall(r"([^\s{},]+):\s*TODO\b", code)
        assert keys, f"TODO in an unexpected place: {line!r}"
        for key in keys:
            answer = answers.get(f"{field}/{key}", answers.get(key))
            if answer is None and hand is not None:
                answer = _from_hand(hand.get(field), key)
            assert answer is not None, f"the starter asks for {field}/{key}: {line.strip()!r}"
            if answer is DROP:
                line = ""
                break
            line = re.sub(rf"({re.escape(key)}:\s*)TODO\b", lambda m, a=answer: m.group(1) + str(a), line)
        if line:
            out.append(line)
    return "\n".join(out) + "\n"


def _from_hand(spec: Any, key: str) -> Any:
    if spec is None:
        return None
    spec = spec if isinstance(spec, dict) else {"column": spec}
    if key in ("column", "value"):
        return spec.get(key)
    if key == "format":
        fmt = (spec.get("datetime") or {}).get("format")
        return None if fmt is None else yaml.safe_dump(fmt, default_flow_style=True).strip()
    if "map" in spec:
        if key.strip("'\"") in spec["map"]:
            return spec["map"][key.strip("'\"")]
        default = spec["map"].get("default", "invalid")
        return DROP if default == "invalid" else default
    return None


def refusing_repeated_hours(text: str) -> str:
    """A mapping's date-times with `ambiguous: error` where they name a zone other than UTC (a
    local time, startTimeLocalized, aside): as init-mapping writes them."""
    return re.sub(
        r"^(?!\s*startTimeLocalized)(.*timezone: (?!UTC\b)[A-Za-z_/]+)(?=\s*[},])",
        r"\1, ambiguous: error",
        text,
        flags=re.M,
    )


def starter(case: Case, *, presets: bool = True) -> str:
    src = open_source(case.file)
    if presets:
        return scaffold.starter(src, case.file.name)
    saved = preset.presets
    preset.presets = list  # type: ignore[assignment]  # no preset recognised: the generic path
    try:
        return scaffold.starter(src, case.file.name)
    finally:
        preset.presets = saved


def _sources(text: str) -> dict[str, Any]:
    """target -> where its value comes from (column, template or constant), ignoring options."""
    out = {}
    for target, spec in (yaml.safe_load(text).get("fields") or {}).items():
        if not isinstance(spec, dict):
            spec = {"column": spec}
        for key in ("column", "template", "value", "first_of", "last_of"):
            if key in spec:
                out[target] = (key, spec[key]) if key != "first_of" else ("column", spec[key])
                break
    return out


@dataclass
class Measure:
    placed: int  # the hand-written mapping's fields the starter fills from the same source
    fields: int
    valid_generated: int
    valid_hand: int
    rows: int
    same_rows: bool  # every row has the same status (valid / invalid / skipped) under both


def measure(case: Case, *, presets: bool = True) -> tuple[Measure, str]:
    text = starter(case, presets=presets)
    hand_text = case.hand.read_text()
    hand, generated = _sources(hand_text), _sources(text)
    placed = sum(generated.get(t) == s for t, s in hand.items())
    try:
        filled = fill(text, case.answers, yaml.safe_load(hand_text)["fields"])
    except AssertionError:
        if presets:
            raise
        filled = None  # the generic path asked what the case has no answer for
    gen_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # the hand-written mapping as the starter writes times: a time in the repeated hour of a zone
        # with daylight saving refused (`ambiguous: error`), whatever the default of the release
        hand_path = Path(tmp) / case.hand.name
        hand_path.write_text(refusing_repeated_hours(hand_text))
        hand_rows = outcomes(case.file, hand_path)
        if filled is not None:
            gen_path = Path(tmp) / "starter.yaml"
            gen_path.write_text(filled)
            with contextlib.suppress(MappingError):  # a starter that does not load: no row valid
                gen_rows = outcomes(case.file, gen_path)
    status = [(o["row"], o["status"]) for o in hand_rows]
    return (
        Measure(
            placed,
            len(hand),
            sum(o["status"] == "valid" for o in gen_rows),
            sum(o["status"] == "valid" for o in hand_rows),
            len(hand_rows),
            [(o["row"], o["status"]) for o in gen_rows] == status,
        ),
        filled or text,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_starter_with_its_todos_filled_validates_the_same_rows(case: Case) -> None:
    got, text = measure(case)
    assert got.same_rows, f"{case.name}: {got}\n{text}"
    assert got.valid_generated == got.valid_hand >= 2


@pytest.mark.parametrize("case", CASES[:5], ids=[c.name for c in CASES[:5]])
def test_a_preset_sample_is_recognised(case: Case) -> None:
    text = starter(case)
    assert "this is that preset" in text and case.hand.stem in text
    assert "timezone: TODO" in text  # only the person knows the export's zone
    # a time in the repeated hour is refused, visibly, on every date-time with a zone
    assert "timezone: TODO, ambiguous: error" in text and "# ambiguous: error: a time in the hour" in text
    # the rest is the preset as shipped (its deliberate `null`s included)
    body = text.split("\n", 7)[7]
    hand = refusing_repeated_hours(case.hand.read_text())
    assert body.replace("timezone: TODO", f"timezone: {case.answers['timezone']}") == hand


def test_starters_refuse_until_filled() -> None:
    """Every starter holds at least the time zone as a TODO, and loading it names each TODO's line."""
    catalog = target_catalog()
    for case in CASES:
        text = starter(case)
        todos = [n for n, line in enumerate(text.splitlines(), 1) if "TODO" in line.split("#", 1)[0]]
        if not todos:
            assert case.name == "close_calls"  # its times carry offsets: nothing to ask
            continue
        with pytest.raises(MappingError) as err:
            parse_mapping(text, catalog, case.name)
        for n in todos:
            assert f"line {n}" in str(err.value), (case.name, n, str(err.value))
        parse_mapping(
            fill(text, case.answers, yaml.safe_load(case.hand.read_text())["fields"]), catalog, case.name
        )


def test_no_starter_writes_a_silent_null() -> None:
    """A value the generic path cannot place is a TODO, never ``null`` (which drops the field)."""
    for case in CASES:
        assert not re.search(r":\s*null\b", starter(case, presets=False)), case.name


def test_audit_columns_never_start_or_end_an_engagement() -> None:
    for case in CASES:
        sources = _sources(starter(case, presets=False))
        for target in ("startTime", "endTime"):
            kind, where = sources.get(target, ("column", ""))
            names = re.findall(r"\{([^{}]+)\}", where) if kind == "template" else [where]
            assert not any(match.is_audit(n) for n in names), (case.name, target, where)


def table() -> str:
    rows = [
        "| file | fields placed right | rows valid: starter vs hand-written | same rows "
        "| generic path (no preset) |",
        "|---|---|---|---|---|",
    ]
    for case in CASES:
        m, _ = measure(case)
        g, _ = measure(case, presets=False)
        generic = f"{g.placed}/{g.fields} placed, {g.valid_generated}/{g.rows} valid"
        rows.append(
            f"| {case.file.name} | {m.placed}/{m.fields} | {m.valid_generated} vs {m.valid_hand} of {m.rows} "
            f"| {'yes' if m.same_rows else 'no'} | {generic} |"
        )
    return "\n".join(rows)


@pytest.mark.slow
def test_the_table_in_the_mapping_docs_is_current() -> None:
    docs = (ROOT / "docs" / "reference" / "mapping.md").read_text()
    assert table() in docs, "regenerate with: python tests/test_init_mapping.py"


if __name__ == "__main__":
    print(table())
