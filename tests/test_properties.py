"""Property: any cell values through the example mapping -> a valid payload or row errors, never a crash."""

from __future__ import annotations

import pandas as pd
from conftest import EXAMPLE_MAPPING
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_sync import payload
from bulk_sync.load import Chunk
from bulk_sync.mapping import apply, bind, load_mapping

SPEC = load_mapping(EXAMPLE_MAPPING, payload.target_catalog())
COLUMNS = SPEC.columns
BOUND = bind(SPEC, COLUMNS, "x.csv")

cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "02/30/2026 10:00 AM",
            "03/08/2026 02:30 AM",
            "1e400",
            "nan",
            "-0",
            "Closed Won",
            "meeting",
            "Site Visit",
            "2026-06-13T10:00:00Z",
            "12,5",
            "TRUE",
            "\x00",
            "=1+1",
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=1, max_size=5))
def test_any_cells_give_a_payload_or_row_errors(rows: list[dict[str, str]]) -> None:
    chunk = Chunk(
        "x.csv", None, list(range(2, 2 + len(rows))), pd.DataFrame(rows, columns=COLUMNS, dtype=str)
    )
    for rec in apply(BOUND, chunk):
        built = payload.build(rec)
        if isinstance(built, list):
            assert built and all(e.slug and e.message for e in built)
        else:
            assert built.body["externalId"] == rec.values["externalId"]
            built.json_bytes()
