"""The mapping language's transforms, one table per transform: cell(s) in -> value (or row error) out."""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd
import pytest

from bulk_sync.errors import MappingError, RowError
from bulk_sync.load import Chunk
from bulk_sync.mapping import apply, bind, parse_mapping
from bulk_sync.payload import Payload, build, target_catalog

CATALOG = target_catalog()


def run(fields: str, rows: list[dict[str, str]], extra: str = "") -> list[Any]:
    """Map `rows` with `fields` (YAML under `fields:`); each row -> its values, or its row errors."""
    text = "version: 1\n" + textwrap.dedent(extra) + "fields:\n  externalId: Id\n" + textwrap.indent(
        textwrap.dedent(fields), "  "
    )  # fmt: skip
    spec = parse_mapping(text, CATALOG)
    headers = list(dict.fromkeys(k for r in rows for k in r))
    frame = pd.DataFrame([[r.get(h, "") for h in headers] for r in rows], columns=headers, dtype=str)
    recs = apply(bind(spec, headers, "t.csv"), Chunk("t.csv", None, list(range(2, 2 + len(rows))), frame))
    out: list[Any] = []
    for rec in recs:
        if rec.skip:
            out.append(("skipped", rec.skip))
            continue
        built = build(rec)
        out.append(
            {k: v for k, v in built.body.items() if k != "externalId"}
            if isinstance(built, Payload)
            else [(e.slug, e.column) for e in built]
        )
    return out


@pytest.mark.parametrize(
    ("cell", "decimal", "expected"),
    [
        ("12,345.67", ".", 12345.67),
        ("$12,345.67", ".", 12345.67),
        ("USD 1,200", ".", 1200),
        ("1.234,56 €", ",", 1234.56),
        ("1 234,5", ",", 1234.5),
        ("(1,200.50)", ".", -1200.5),
        ("-€5", ".", -5),
        ("12k", ".", [("bad-number", "Amount")]),
        ("", ".", {}),
    ],
)
def test_numbers(cell: str, decimal: str, expected: Any) -> None:
    got = run(f'opportunity.externalId: {{value: O-1}}\nopportunity.amount: {{column: Amount, decimal: "{decimal}"}}\n',
              [{"Id": "1", "Amount": cell}])[0]  # fmt: skip
    if isinstance(expected, list):
        assert got == expected
    elif expected == {}:
        assert "amount" not in got["opportunity"]
    else:
        assert got["opportunity"]["amount"] == expected


@pytest.mark.parametrize(
    ("cell", "expected"), [("50%", 0.5), ("100 %", 1.0), ("0.25", 0.25), ("12,5%", None)]
)
def test_percentages_for_share_of_sale(cell: str, expected: float | None) -> None:
    got = run(
        "engagementUsers[0].externalId: {value: U-1}\nengagementUsers[0].shareOfSale: {column: Share, decimal: ','}\n"
        if expected is None
        else "engagementUsers[0].externalId: {value: U-1}\nengagementUsers[0].shareOfSale: Share\n",
        [{"Id": "1", "Share": cell}],
    )[0]
    assert got["engagementUsers"][0]["shareOfSale"] == (0.125 if expected is None else expected)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("Closed Won", "WON"),
        ("  closed   WON ", "WON"),  # case and whitespace do not matter
        ("Lost", "LOST"),
        ("Negotiation", [("invalid-enum", "Stage")]),
    ],
)
def test_enum_maps(cell: str, expected: Any) -> None:
    fields = "opportunity.externalId: {value: O-1}\nopportunity.disposition: {column: Stage, map: {Closed Won: WON, Closed Lost: LOST, Lost: LOST}}\n"
    got = run(fields, [{"Id": "1", "Stage": cell}])[0]
    assert (got["opportunity"]["disposition"] if isinstance(expected, str) else got) == expected


def test_unmapped_enum_names_column_value_and_allowed_values() -> None:
    spec = parse_mapping(
        "version: 1\nfields:\n  externalId: Id\n  direction: {column: Dir, map: {In: INBOUND}}\n", CATALOG
    )
    frame = pd.DataFrame({"Id": ["1"], "Dir": ["Sideways"]}, dtype=str)
    rec = apply(bind(spec, ["Id", "Dir"], "t.csv"), Chunk("t.csv", None, [2], frame))[0]
    err = rec.errors[0]
    assert isinstance(err, RowError) and err.column == "Dir"
    assert "'Sideways'" in err.message and "INBOUND" in err.message and "'In'" in err.message


def test_text_lower_template_extract_split() -> None:
    fields = """\
    subject: {template: "{First} {Last} - {Kind}"}
    engagementUsers[0].externalId: {value: U-1}
    engagementUsers[0].email: {column: Owner, extract: '([^\\s()<>]+@[^\\s()<>]+)', lower: true}
    account.externalId: {value: A-1}
    account.phoneNumbers[]: {column: Phones, split: ";"}
    """
    rows = [
        {"Id": "1", "First": "Ann", "Last": "Lee", "Kind": "Demo", "Owner": "Ann Lee (Ann.Lee@X.com)",
         "Phones": "555-1; 555-2 ;555-1;"},
        {"Id": "2", "First": "", "Last": "", "Kind": "", "Owner": "bo@x.com", "Phones": ""},
        {"Id": "3", "First": "Cy", "Last": "", "Kind": "Call", "Owner": "no address here", "Phones": "555-3"},
    ]  # fmt: skip
    first, second, third = run(fields, rows)
    assert first["subject"] == "Ann Lee - Demo"
    assert first["engagementUsers"][0]["email"] == "ann.lee@x.com"
    assert first["account"]["phoneNumbers"] == ["555-1", "555-2"]  # split, trimmed, de-duplicated
    assert "subject" not in second and "phoneNumbers" not in second.get("account", {})
    assert third == [("no-match", "Owner")]


def test_date_and_time_columns_combined_and_zone_from_a_column() -> None:
    fields = """\
    startTime: {template: "{Date} {Time}", datetime: {format: "%m/%d/%Y %I:%M %p", timezone_column: Zone, timezone: UTC}}
    startTimeLocalized: {template: "{Date} {Time}", datetime: {format: "%m/%d/%Y %I:%M %p"}}
    """
    rows = [
        {"Id": "1", "Date": "03/10/2026", "Time": "9:00 AM", "Zone": "America/New_York"},
        {"Id": "2", "Date": "03/10/2026", "Time": "9:00 AM", "Zone": "Europe/Berlin"},
        {"Id": "3", "Date": "03/10/2026", "Time": "9:00 AM", "Zone": ""},  # the fallback zone
        {"Id": "4", "Date": "03/10/2026", "Time": "9:00 AM", "Zone": "Mars/Olympus"},
    ]
    a, b, c, d = run(fields, rows)
    assert (a["startTime"], a["startTimeLocalized"]) == ("2026-03-10T13:00:00Z", "2026-03-10T09:00:00")
    assert b["startTime"] == "2026-03-10T08:00:00Z"
    assert c["startTime"] == "2026-03-10T09:00:00Z"
    assert d == [("bad-timezone", "Date, Time")]


@pytest.mark.parametrize(
    ("cell", "policy", "expected"),
    [
        ("11/01/2026 01:30", "earlier", "2026-11-01T05:30:00Z"),  # EDT, the first 1:30
        ("11/01/2026 01:30", "later", "2026-11-01T06:30:00Z"),  # EST, the second 1:30
        ("11/01/2026 01:30", "error", [("ambiguous-datetime", "Start")]),
        (
            "11/01/2026 01:30",
            None,
            [("ambiguous-datetime", "Start")],
        ),  # the default: never a guess (issue 34)
        ("03/08/2026 02:30", "earlier", [("bad-datetime", "Start")]),  # spring-forward gap: never exists
        ("03/08/2026 03:30", "earlier", "2026-03-08T07:30:00Z"),
        ("46091.5", "earlier", "2026-03-10T16:00:00Z"),  # an Excel serial number: 2026-03-10 12:00 New York
        ("2026-07-01T09:00:00+02:00", "earlier", "2026-07-01T07:00:00Z"),  # an offset wins over the zone
        (
            "12/31/2026 23:30",
            "earlier",
            "2027-01-01T04:30:00Z",
        ),  # the UTC date moves on; the wall date does not
    ],
)
def test_datetimes_dst_serials_offsets(cell: str, policy: str | None, expected: Any) -> None:
    key = "" if policy is None else f", ambiguous: {policy}"
    fields = f"""\
    startTime: {{column: Start, datetime: {{format: "%m/%d/%Y %H:%M", timezone: America/New_York{key}}}}}
    startTimeLocalized: {{column: Start, datetime: {{format: "%m/%d/%Y %H:%M", timezone: America/New_York}}}}
    """
    rows = [{"Id": "1", "Start": cell}] * 3  # three rows: the column-at-a-time path, not only the scalar one
    got = run(fields, rows)
    for g in got:
        if isinstance(expected, str):
            assert g["startTime"] == expected
        else:  # the row is invalid, and the slug and column say why
            assert isinstance(g, list) and g[0] == expected[0]


def test_blank_policy_and_address_fill() -> None:
    fields = """\
    content: {column: Notes, blank: empty}
    direction: {column: Dir, blank: "null"}
    account.externalId: {value: A-1}
    account.addresses[0].city: City
    account.addresses[0].zip: Zip
    """
    a, b = run(fields, [{"Id": "1", "Notes": "", "Dir": "", "City": "Austin", "Zip": ""},
                        {"Id": "2", "Notes": "x", "Dir": "INBOUND", "City": "", "Zip": ""}])  # fmt: skip
    assert a["content"] == "" and a["direction"] is None
    assert a["account"]["addresses"] == [
        {"city": "Austin", "zip": "", "street": "", "state": "", "country": ""}
    ]
    assert "addresses" not in b["account"]  # no part has a value: no address at all


def test_skip_rules_report_the_rule() -> None:
    extra = """\
    skip:
      - {column: Id, equals: [Total, Grand Total]}
      - {column: Status, matches: "(?i)cancel"}
      - {column: Subject, blank: true}
    """
    rows = [
        {"Id": "1", "Status": "Done", "Subject": "a"},
        {"Id": "total", "Status": "", "Subject": "sum"},
        {"Id": "3", "Status": "Cancelled by customer", "Subject": "c"},
        {"Id": "4", "Status": "Done", "Subject": ""},
    ]
    got = run("subject: Subject\n", rows, extra)
    assert got[0] == {"subject": "a"}
    assert got[1] == ("skipped", "skipped by rule 1 of the mapping: Id is 'Total' or 'Grand Total'")
    assert got[2][0] == "skipped" and "Status matches" in got[2][1]
    assert got[3][0] == "skipped" and "Subject is empty" in got[3][1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("subject: {column: A, template: '{B}'}\n", "needs exactly one of `column`"),
        ("subject: {template: 'no braces'}\n", "`template` names no column"),
        ("subject: {column: A, extract: '('}\n", "`extract`: not a pattern bulk_sync can run"),
        ("subject: {column: A, extract: '(a)\\1'}\n", "no backreferences"),
        ("subject: {column: A, split: ';'}\n", "the target must be a list of values ending in `[]`"),
        (
            "engagementType.name: {column: A, blank: 'null'}\n",
            "SIRO does not accept null for engagementType.name",
        ),
        ("opportunity.amount: {column: A, blank: empty}\n", "only for text fields"),
        ("opportunity.amount: {column: A, decimal: ';'}\n", "decimal"),
        ("startTime: {column: A, datetime: {ambiguous: never, timezone: UTC}}\n", "ambiguous"),
    ],
)
def test_transform_mistakes_are_mapping_errors(fields: str, message: str) -> None:
    with pytest.raises(MappingError, match="line") as info:
        parse_mapping("version: 1\nfields:\n  externalId: Id\n  " + fields, CATALOG)
    assert message in str(info.value)
