"""Golden payloads: the example files through the example mapping, compared as data.

Every payload is also validated against the provider's OpenAPI schema (tests/schema/), converted
to JSON Schema here, independently of the sandbox's own conversion.
Regenerate after an intended change with:  BULK_SYNC_UPDATE_GOLDEN=1 pytest tests/test_golden_payloads.py
"""

from __future__ import annotations

import json
import os
from typing import Any

from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, EXAMPLE_XLSX, GOLDEN, ROOT, SCHEMA, outcomes
from jsonschema import Draft202012Validator

from bulk_sync import mapping, payload
from bulk_sync.pipeline import prepare, scan_columns


def test_schema_copy_matches_the_packaged_one() -> None:
    assert SCHEMA.read_bytes() == (ROOT / "bulk_sync" / "siro-openapi.yaml").read_bytes()


def test_csv_matches_golden() -> None:
    got = outcomes(EXAMPLE_CSV)
    if os.environ.get("BULK_SYNC_UPDATE_GOLDEN"):
        GOLDEN.write_text("".join(json.dumps(o, sort_keys=True) + "\n" for o in got))
    want = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    assert got == want


def test_xlsx_gives_the_same_payloads_as_csv() -> None:
    """Typed Excel cells (dates, numbers, text zips) must map to exactly what the CSV gives."""
    assert outcomes(EXAMPLE_XLSX) == outcomes(EXAMPLE_CSV)


def test_every_payload_is_valid_against_the_openapi_schema(validator: Draft202012Validator) -> None:
    valid = [o["payload"] for o in outcomes(EXAMPLE_CSV) if o["status"] == "valid"]
    assert len(valid) >= 50
    for body in valid:
        errors = list(validator.iter_errors(body))
        assert not errors, (body["externalId"], [e.message for e in errors])


def test_example_covers_every_part_of_the_body() -> None:
    """The example data exercises every object of the body at least once."""
    valid = [o["payload"] for o in outcomes(EXAMPLE_CSV) if o["status"] == "valid"]
    seen: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                seen.add(f"{prefix}{k}")
                walk(v, f"{prefix}{k}.")
        elif isinstance(node, list):
            for v in node:
                walk(v, prefix)

    for body in valid:
        walk(body, "")
    catalog = {k.replace("[]", "") for k in payload.target_catalog()}
    # Fields the example deliberately leaves out: SIRO-internal ids and merge bookkeeping.
    skipped = {
        p
        for p in catalog
        if p.split(".")[-1]
        in {
            "engagementTypeId",
            "mergedToExternalId",
            "mergedFromExternalIds",
            "lastActivityAt",
            "copyEngagementRelationships",
        }
        or p.startswith(
            (
                "lead.addresses",
                "contact.addresses",
                "contact.account.",
                "lead.owner",
                "contact.owner",
                "lead.latitude",
                "lead.longitude",
                "contact.latitude",
                "contact.longitude",
                "lead.deletedAt",
                "contact.deletedAt",
                "account.deletedAt",
                "engagementUsers.deletedAt",
                "opportunity.remoteCreatedAt",
            )
        )
    }
    missing = sorted(catalog - seen - skipped)
    assert missing == []
    assert {
        "deletedAt",
        "contact.account.externalId",
        "account.owner.externalId",
        "engagementUsers.shareOfSale",
    } <= seen


def test_invalid_rows_are_the_intended_ones() -> None:
    bad = {o["row"]: o["errors"] for o in outcomes(EXAMPLE_CSV) if o["status"] == "invalid"}
    assert bad == {
        9: [["missing-value", "Appointment ID"]],
        17: [["bad-datetime", "Start"], ["bad-datetime", "Start"]],
        25: [["invalid-enum", "Activity"]],
        33: [["bad-datetime", "End"]],
        46: [["bad-number", "Amount"]],
    }


def test_a_row_with_a_bad_cell_gets_its_result_without_its_values_built() -> None:
    """A row whose cells are wrong is reported from its cells' errors alone (failed_record): the
    same id, errors and result as when its nested values are built and validated."""
    plan = scan_columns(prepare([EXAMPLE_CSV], EXAMPLE_MAPPING))
    src, bound = plan.jobs[0]
    light_rows = 0
    for chunk in src.chunks():
        mc = mapping.map_chunk(bound, chunk)
        cc = payload.check_chunk(mc)
        for i in range(mc.n):
            light, full = mc.failed_record(i), mc.record(i)
            if light is None:
                assert not full.errors
                continue
            light_rows += 1
            assert not cc.ok[i]
            assert (light.external_id, light.row_number, light.errors, light.skip) == (
                full.external_id,
                full.row_number,
                full.errors,
                full.skip,
            )
            assert cc.result(i) == payload.build(full, bound.spec.resource) == full.errors == light.errors
    assert light_rows >= 3  # the example's rows with a bad date, enum or number
