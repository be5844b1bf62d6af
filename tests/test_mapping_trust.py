"""Issue 16: a mapping a new user can trust. One test (or more) per problem the issue lists; each
failed on the main before the fix. Docs that run: tests/test_docs.py; init-mapping on real export
shapes: tests/test_init_mapping.py."""

from __future__ import annotations

import csv
import datetime as dt
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import ROOT, RunCli, Sandbox, cli_argv, cli_env, cli_popen

from bulk_sync import mapping
from bulk_sync.errors import MappingError, RowError
from bulk_sync.mapping import convert, numbers, parse_mapping
from bulk_sync.payload import target_catalog

MEETINGS = """\
Meeting ID,Title,Direction,Start,Type,City,Phone,Mobile,Owner Email
M-1001,Roof estimate,Inbound,11/03/2026 09:00 AM,Sales Meeting,Chicago,312-555-0101,,dana@brightroof.com
M-1002,Follow-up,Outbound,11/04/2026 02:30 PM,Sales Meeting,Evanston,,,marcus@brightroof.com
"""
# The headline mapping of mappings/README.md as it was: a rep with an email and no id
OLD_HEADLINE = """\
version: 1
fields:
  externalId: {column: Meeting ID, required: true}
  subject: Title
  direction:
    column: Direction
    map: {Inbound: INBOUND, Outbound: OUTBOUND, Unknown: null}
  startTime:
    column: Start
    datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}
  engagementType.name: {value: Sales appointment}
  engagementType.activityType: {column: Type, map: {Sales Meeting: MEETING}}
  account.addresses[0].city: City
  account.phoneNumbers[0]: Phone
  account.phoneNumbers[1]: Mobile
  engagementUsers[0].email: {column: Owner Email}
"""


def _files(tmp_path: Path, mapping_text: str, data: str = MEETINGS) -> tuple[Path, Path]:
    (csv_path := tmp_path / "meetings.csv").write_text(data)
    (map_path := tmp_path / "m.yaml").write_text(mapping_text)
    return csv_path, map_path


# --------------------------------------------------------------------------- checked at load time


def test_an_object_without_a_source_for_its_required_id_is_refused_once_at_load(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Before: every row invalid ("engagementUsers[0].externalId is required"), exit 1."""
    data, m = _files(tmp_path, OLD_HEADLINE)
    res = run_cli("validate", data, "-m", m)
    assert res.code == 2, res.stderr
    assert "line 16: fields.engagementUsers[0].email: engagementUsers[0] is sent" in res.stderr
    assert "Map a column (or a `value`) to engagementUsers[0].externalId" in res.stderr
    assert "Traceback" not in res.stderr and res.report == []  # nothing read


def test_a_mapping_with_todo_left_is_refused_listing_each_with_its_line(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Before: `{value: TODO}` was sent to SIRO as the type's name, every row valid."""
    text = (
        OLD_HEADLINE.replace("{value: Sales appointment}", "{value: TODO}")
        .replace("timezone: America/Chicago", "timezone: TODO")
        .replace("Unknown: null", "Unknown: TODO")
        + "  engagementUsers[0].externalId: Owner Email\n"
    )
    text = text.replace("  account.addresses[0].city: City\n  account.phoneNumbers[0]: Phone\n", "")
    text = text.replace("  account.phoneNumbers[1]: Mobile\n", "")
    data, m = _files(tmp_path, text)
    res = run_cli("validate", data, "-m", m)
    assert res.code == 2, res.stderr
    for line in (
        "line 7: fields.direction.map.Unknown: TODO left",
        "line 10: fields.startTime.datetime.timezone: TODO left: the IANA time zone",
        "line 11: fields.engagementType.name.value: TODO left",
    ):
        assert line in res.stderr, res.stderr
    assert res.report == []
    run = run_cli("run", data, "-m", m, "--sandbox")
    assert run.code == 2 and "TODO left" in run.stderr


def test_todo_in_a_comment_is_not_a_todo() -> None:
    parse_mapping("version: 1\nfields:\n  externalId: Id   # TODO: check the id column\n", target_catalog())


# --------------------------------------------------------------------------- a safe loader


BILLION_LAUGHS = """\
version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
fields:
  externalId: Meeting ID
"""


def _limit_memory() -> None:  # 1 GiB of address space: the file once grew the tool to 7 GB
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_billion_laughs_is_refused_before_it_expands(tmp_path: Path) -> None:
    data, m = _files(tmp_path, BILLION_LAUGHS)
    proc = subprocess.run(
        cli_argv("validate", data, "-m", m, "--report", tmp_path / "r.csv"),
        capture_output=True, text=True, env=cli_env(), timeout=60, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "expands to" in proc.stderr and "through its aliases" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_a_few_aliases_are_fine() -> None:
    text = "version: 1\nfields:\n  externalId: &id {column: Id, required: true}\n  subject: *id\n"
    spec = parse_mapping(text, target_catalog())
    assert {f.target for f in spec.fields} == {"externalId", "subject"}


@pytest.mark.parametrize(
    "tag",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/name:os.system",
        '!!binary "aGVsbG8="',
        "!custom thing",
    ],
)
def test_yaml_tags_are_refused_with_one_line(run_cli: RunCli, tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "ran"
    described = OLD_HEADLINE.replace("version: 1\n", f"version: 1\ndescription: {tag}\n")
    data, m = _files(tmp_path, described.replace("{marker}", str(marker)))
    res = run_cli("validate", data, "-m", m)
    assert res.code == 2, res.stderr
    assert "line 2: the tag" in res.stderr and "is not allowed in a mapping file" in res.stderr
    assert "Traceback" not in res.stderr and not marker.exists()


EVIL = "(a+)+$"
CELL = "a" * 40 + "!"  # 41 characters: years of backtracking for Python's re


def test_catastrophic_patterns_run_in_linear_time(run_cli: RunCli, tmp_path: Path) -> None:
    """Before: `(a+)+$` on a 41-character cell hung the run (no signal could stop it)."""
    rows = "Id,Start,Note\n" + "".join(f"X-{i},2026-11-03 09:00,{CELL}\n" for i in range(200))
    text = f"""\
version: 1
skip:
  - {{column: Note, matches: '{EVIL}'}}
fields:
  externalId: Id
  startTime: {{column: Start, datetime: {{format: "%Y-%m-%d %H:%M", timezone: UTC}}}}
  content: {{column: Note, extract: '{EVIL}'}}
"""
    data, m = _files(tmp_path, text, rows)
    res = run_cli("validate", data, "-m", m, timeout=60)
    assert res.code == 1, res.stderr
    assert {r["status"] for r in res.report} == {"invalid"}
    assert {r["error_type"] for r in res.report} == {"no-match"}  # no cell ends in a's: nothing matches


def test_patterns_re2_cannot_run_are_refused_at_load() -> None:
    for pattern in (r"(a)\1", "(?=a)b", "(?<=a)b"):
        text = f"version: 1\nfields:\n  externalId: {{column: Id, extract: '{pattern}'}}\n"
        with pytest.raises(MappingError, match="linear time"):
            parse_mapping(text, target_catalog())


@pytest.mark.slow
def test_a_run_with_costly_patterns_stops_on_sigterm(sandbox: Sandbox, tmp_path: Path) -> None:
    """SIGTERM in the middle of a run whose every row meets `(a+)+$`: it stops, accounts for every
    row and exits 3 within seconds (before: stuck in the regex, deaf to signals)."""
    server = sandbox()
    rows = "Id,Start,Note\n" + "".join(f"X-{i},2026-11-03 09:00,{CELL}x\n" for i in range(20_000))
    text = f"""\
version: 1
skip:
  - {{column: Note, matches: '{EVIL}'}}
fields:
  externalId: Id
  startTime: {{column: Start, datetime: {{format: "%Y-%m-%d %H:%M", timezone: UTC}}}}
"""
    data, m = _files(tmp_path, text, rows)
    proc = cli_popen(
        cli_argv("run", data, "-m", m, "--base-url", server.base_url, "--report", tmp_path / "r.csv",
                 "--state", tmp_path / "s.sqlite3", "--rate-per-min", "120"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    time.sleep(3)
    assert proc.poll() is None, "the run ended before the signal: make it longer"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert time.monotonic() - sent < 30
    assert "Traceback" not in err
    report = (tmp_path / "r.csv").read_text().splitlines()
    assert len(report) == 1 + 20_000  # every row accounted for


# --------------------------------------------------------------------------- the language


# what SIRO requires beside the field under test, so that the mapping loads
_REQUIRED = """\
version: 1
fields:
  externalId: Id
  engagementUsers[0].externalId: {value: u-1}
  opportunity.externalId: {value: o-1}
  contact.externalId: {value: c-1}
  engagementType.activityType: {value: MEETING}
  engagementType.name: {value: Meeting}
"""


def _one(target: str, spec: str, row: dict[str, str]) -> object:
    """The value (or RowError) ``target: spec`` gives for one row, through the scalar path."""
    text = _REQUIRED.replace(f"  {target}: ", "  unused: ") + f"  {target}: {spec}\n"
    text = "\n".join(line for line in text.splitlines() if not line.startswith("  unused: ")) + "\n"
    field = next(f for f in parse_mapping(text, target_catalog()).fields if f.target == target)
    return convert.convert_cell(field, row.get(field.spec.column or ""), field.spec.column)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("Closed Won", "WON"), ("closed  lost", "LOST"), ("Negotiation", "OPEN"), ("won", "WON"), ("", None)],
)
def test_map_default_is_the_value_for_anything_not_listed(cell: str, expected: str | None) -> None:
    spec = "{column: Stage, map: {Closed Won: WON, Closed Lost: LOST, default: OPEN}}"
    got = _one("opportunity.disposition", spec, {"Stage": cell})
    assert (None if got is mapping.OMIT else got) == expected


def test_map_default_invalid_makes_unlisted_values_invalid() -> None:
    spec = "{column: T, map: {Demo: Product demo, default: invalid}}"
    assert _one("engagementType.name", spec, {"T": "demo"}) == "Product demo"
    err = _one("engagementType.name", spec, {"T": "Lunch"})
    assert isinstance(err, RowError) and err.slug == "unmapped-value" and "'Lunch'" in err.message


@pytest.mark.parametrize(
    ("spec", "cell", "expected"),
    [
        ("{column: C, first_of: ';'}", "Ann Lee; Bo Chen", "Ann Lee"),
        ("{column: C, last_of: ';'}", "Ann Lee; Bo Chen;", "Bo Chen"),
        ("{column: C, parse: name_email}", "Ann Lee (ann@x.com)", "Ann Lee"),
        ("{column: C, parse: name_email}", '"Lee, Ann" <ann@x.com>', "Lee, Ann"),
        ("{column: C, first_of: ';', parse: name_email}", "Ann Lee <ann@x.com>;Bo <bo@x.com>", "Ann Lee"),
    ],
)
def test_list_picks_and_name_email_for_a_name(spec: str, cell: str, expected: str) -> None:
    assert _one("contact.name", spec, {"C": cell}) == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("Ann Lee (Ann@X.com)", "ann@x.com"), ("Ann Lee <ann@x.com>", "ann@x.com"), ("ann@x.com", "ann@x.com")],
)
def test_name_email_gives_email_targets_the_address(cell: str, expected: str) -> None:
    spec = "{column: C, parse: name_email, lower: true}"
    assert _one("engagementUsers[0].email", spec, {"C": cell}) == expected


def test_a_cell_of_people_is_a_list_of_engagement_users() -> None:
    spec = "{column: P, split: ';', parse: name_email, lower: true}"
    got = _one(
        "engagementUsers[]", spec, {"P": "Bo Chen <Bo@X.com>; Ann Lee (ann@x.com);; BO@x.com ; Cy <cy@x.com>"}
    )
    assert got == (
        {"externalId": "bo@x.com", "email": "bo@x.com", "name": "Bo Chen"},
        {"externalId": "ann@x.com", "email": "ann@x.com", "name": "Ann Lee"},
        {"externalId": "cy@x.com", "email": "cy@x.com", "name": "Cy"},
    )  # cell order kept, the second Bo dropped, names as written
    err = _one("engagementUsers[]", spec, {"P": "Ann Lee <ann@x.com>; Dana from sales"})
    assert isinstance(err, RowError) and err.slug == "bad-email" and "Dana from sales" in err.message


def test_a_people_list_needs_split_and_parse() -> None:
    with pytest.raises(MappingError, match="give `split`"):
        parse_mapping(
            "version: 1\nfields:\n  externalId: Id\n  engagementUsers[]: People\n", target_catalog()
        )


@pytest.mark.parametrize(
    ("cell", "unit", "minutes"),
    [
        ("01:30", "minutes", 90), ("1:30:30", "minutes", 90.5), ("90", "minutes", 90),
        ("5400", "seconds", 90), ("1.5", "hours", 90), ("1h 30m", "minutes", 90),
        ("90 min", "minutes", 90), ("PT1H30M", "minutes", 90), ("45s", "minutes", 0.75),
    ],
)  # fmt: skip
def test_durations(cell: str, unit: str, minutes: float) -> None:
    assert convert.parse_duration(cell, unit) == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("cell", ["soon", "-5", "1:75", "nan"])
def test_not_durations(cell: str) -> None:
    with pytest.raises(numbers.CellError):
        convert.parse_duration(cell, "minutes")


def test_duration_end_is_elapsed_time_across_daylight_saving(
    run_cli: RunCli, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Start + duration, through the real CLI: spring forward (01:30 + 1 h = 03:30 EDT) and fall
    back (01:30 EDT, the first of the two as the mapping says, + 1 h = 01:30 EST)."""
    rows = "Id,Start,Length\nA,2026-03-08 01:30,01:00\nB,2026-11-01 01:30,60\nC,2026-11-01 09:00,\n"
    text = """\
version: 1
fields:
  externalId: Id
  startTime:
    column: Start
    datetime: {format: "%Y-%m-%d %H:%M", timezone: America/New_York, ambiguous: earlier}
  startTimeLocalized: {column: Start, datetime: {format: "%Y-%m-%d %H:%M"}}
  endTime: {column: Length, duration: {from: startTime}}
"""
    data, m = _files(tmp_path, text, rows)
    server = sandbox()
    res = run_cli("run", data, "-m", m, "--base-url", server.base_url)
    assert res.code == 0, res.stderr
    got = server.state.records
    assert (got["A"]["startTime"], got["A"]["endTime"]) == ("2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z")
    assert (got["B"]["startTime"], got["B"]["endTime"]) == ("2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z")
    assert "endTime" not in got["C"]  # no duration, no end


def test_duration_needs_a_datetime_field_to_start_from() -> None:
    text = "version: 1\nfields:\n  externalId: Id\n  endTime: {column: L, duration: {from: startTime}}\n"
    with pytest.raises(MappingError, match=r"duration\.from"):
        parse_mapping(text, target_catalog())


def test_an_optional_column_missing_from_the_file_is_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    """Before: a preset stopped outright when an export lacked even an unimportant column."""
    text = """\
version: 1
fields:
  externalId: Meeting ID
  subject: Title
  content: {column: Notes, optional: true}
  remoteUpdatedAt: {column: Last Modified, datetime: {timezone: UTC}, optional: true}
  engagementUsers[0].externalId: Owner Email
"""
    data, m = _files(tmp_path, text)
    res = run_cli("validate", data, "-m", m)
    assert res.code == 0, res.stderr
    assert res.stderr.count("column 'Notes' is not in the file: it is optional, so content is left out") == 1
    assert "column 'Last Modified' is not in the file: it is optional, so remoteUpdatedAt" in res.stderr
    assert [r["status"] for r in res.report] == ["valid", "valid"]
    m.write_text(text.replace(", optional: true", ""))
    strict = run_cli("validate", data, "-m", m)
    assert strict.code == 2 and "Notes" in strict.stderr


def test_a_preset_reads_an_export_that_lacks_its_optional_columns(run_cli: RunCli, tmp_path: Path) -> None:
    """Before: the Salesforce preset stopped (exit 2) on an export without Description, Created Date,
    Last Modified Date and Amount. Now those fields are left out, with one warning each, and
    init-mapping still recognises the preset."""
    sample = ROOT / "example_data" / "presets" / "salesforce_events_report.csv"
    dropped = ["Description", "Created Date", "Last Modified Date", "Amount"]
    with sample.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    keep = [i for i, h in enumerate(rows[0]) if h not in dropped]
    assert len(keep) == len(rows[0]) - 4
    lean = tmp_path / "lean.csv"
    with lean.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[r[i] for i in keep if i < len(r)] for r in rows])
    preset = ROOT / "mappings" / "salesforce_events_report.yaml"
    full = run_cli("validate", sample, "-m", preset)
    res = run_cli("validate", lean, "-m", preset)
    assert res.code == full.code == 1, res.stderr
    assert [r["status"] for r in res.report] == [r["status"] for r in full.report]
    for column in dropped:
        assert f"column {column!r} is not in the file: it is optional" in res.stderr
    starter = run_cli("init-mapping", lean)
    assert "this is that preset" in starter.stdout and "salesforce_events_report" in starter.stdout
