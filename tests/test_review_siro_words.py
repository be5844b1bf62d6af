"""Issue 36: SIRO's refusals in an ops person's words, on a live answer. A real `bulk-sync run` of
the example against the sandbox on 127.0.0.1 (SIRO-style answers), which refuses two rows by a rule
of its own: with a 422 and Zod issues (as SIRO answers a record it will not take), then with a bare
400. The run's report keeps SIRO's message; the review page, over HTTP, says it in words: that SIRO
refused the row, what it said, without SIRO's field names, the refused rows beside the invalid ones,
their cell outlined when SIRO named one."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs
from bulk_sync.review.server import ReviewThread
from bulk_sync.sandbox import Faults, SandboxServer

REFUSED = r"^APT-2400[12]$"  # the example's first two rows: SIRO will not take them
DEVELOPER = re.compile(
    r"%[a-zA-Z]|`|\b(?:externalId|startTime|endTime|opportunity\.|engagementUsers|account\.)"
)


def run_against(siro: SandboxServer, reports: Path) -> list[dict[str, str]]:
    """The real CLI's `run` of the example against ``siro``; the report's rows SIRO refused."""
    argv = cli_argv(
        "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", siro.base_url,
        "--no-state", "--no-rep-check", "--report", reports / "live.csv",
    )  # fmt: skip
    done = cli_run(argv, env=cli_env(), cwd=reports, timeout=120, check=False, capture_output=True)
    assert done.returncode == 1, done.stderr  # rows to fix: the invalid ones and the refused ones
    with (reports / "live.csv").open(encoding="utf-8-sig", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["status"] == "rejected"]


def page_rows(reports: Path) -> dict[str, tuple[str, list[str]]]:
    """Over HTTP, the run page's rows: Appointment ID -> (what the page says, the cells outlined)."""
    server = ReviewThread(Review(None, [reports], ROOT / "mappings")).start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=True, timeout=60) as client:
            client.get(f"/?key={server.review.key}")
            html = client.get(f"/runs/{find_runs([reports])[0].id}").text
    finally:
        server.stop()
    out = {}
    for row in html.split("<tr data-index=")[1:]:
        said = row.split('<td class="msg">', 1)[1].split("</td>", 1)[0].replace("&#39;", "'")
        ident = row.split('data-col="Appointment ID"', 1)[1].split(">", 1)[1].split("<", 1)[0]
        bad = re.findall(r'data-col="([^"]+)" data-i="\d+" tabindex="0" class="badcell"', row)
        out[ident] = (said, bad)
    return out


@pytest.mark.parametrize(
    ("status", "kind", "message", "words", "outlined"),
    [
        (  # SIRO's 422, a Zod issue at the record's externalId
            422,
            "api-invalid",
            "externalId: externalId is reserved (sandbox rule)",
            "api-invalid: SIRO refused it: the value is reserved (sandbox rule)",
            ["Appointment ID"],
        ),
        (  # a 4xx that names no field
            400,
            "api-rejected",
            "Bad request",
            "api-rejected: SIRO refused it: Bad request",
            [],
        ),
    ],
)
def test_a_live_siro_refusal_is_said_in_words_on_the_run_page(
    sandbox: Callable[..., SandboxServer],
    tmp_path: Path,
    status: int,
    kind: str,
    message: str,
    words: str,
    outlined: list[str],
) -> None:
    refused = run_against(sandbox(Faults(reject_pattern=REFUSED, reject_status=status)), tmp_path)
    assert [(r["external_id"], r["error_type"], r["message"]) for r in refused] == [
        ("APT-24001", kind, message),
        ("APT-24002", kind, message),
    ]  # the report keeps SIRO's own message
    rows = page_rows(tmp_path)
    assert len(rows) == 7  # the 5 invalid rows and the 2 SIRO refused
    for ident in ("APT-24001", "APT-24002"):
        said, bad = rows[ident]
        assert said == words and bad == outlined, (ident, said, bad)
    for said, _ in rows.values():
        assert not DEVELOPER.search(said), said
