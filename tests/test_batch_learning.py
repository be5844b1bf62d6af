"""`--batch-size auto` against a SIRO with hidden limits (issue 38): the sandbox's --max-batch (413),
work a record and a gateway that answers 504 while storing the records; the size learned is kept
per SIRO in the state file. Real HTTP on 127.0.0.1, the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import EXAMPLE_MAPPING, TOKEN, CliResult, RunCli, cli_env, cli_popen, make_file

from bulk_sync.payload import Payload
from bulk_sync.sandbox import SandboxServer
from bulk_sync.settings import RunSettings
from bulk_sync.upload import Uploader
from bulk_sync.upload.sizing import BatchSizer

Hidden = Callable[..., SandboxServer]
BATCH = "/v1/integrations/sync/batch/engagements"


# -- the sizer, one function at a time ---------------------------------------------------------


def _grow(sizer: BatchSizer, limit: int, answers: int = 200, per_record: float = 0.001) -> list[int]:
    """Play ``answers`` full batches against a server refusing more than ``limit``; the sizes sent."""
    sent = []
    for _ in range(answers):
        n = sizer.limit
        sent.append(n)
        trial = sizer.sending(n)
        if n > limit:
            sizer.refused(n)
        else:
            sizer.answered(n, per_record * n)
        if trial:
            sizer.settled(trial)
    return sent


@pytest.mark.parametrize("limit", [30, 100, 450, 500, 700])
def test_the_size_grows_to_within_10_percent_of_the_limit_and_stays(limit: int) -> None:
    sizer = BatchSizer(100, auto=True, upper=1000, budget=20.0)
    sent = _grow(sizer, limit)
    assert 0.9 * limit <= sizer.size <= limit
    assert sizer.learned == sizer.size
    assert sum(n > limit for n in sent) <= 7  # the 413s the search costs
    assert all(0.9 * limit <= n <= limit for n in sent[-100:])  # and there it stays


def test_the_time_budget_stops_growth_before_any_refusal() -> None:
    sizer = BatchSizer(100, auto=True, upper=1000, budget=1.0)
    _grow(sizer, 10_000, per_record=0.004)  # 4 ms a record: 250 records fill the budget
    assert sizer.size * 0.004 < 1.0 and sizer.size >= 100


def test_a_fixed_size_never_grows_and_a_413_lowers_it() -> None:
    sizer = BatchSizer(100, auto=False, upper=100, budget=20.0)
    _grow(sizer, 10_000)
    assert sizer.size == 100 and sizer.learned is None
    sizer.refused(100)
    assert sizer.size == 50
    assert not sizer.too_slow(50) and not sizer.failed(50)  # retried as they are


def test_a_504_halves_and_the_timed_out_size_is_not_tried_again() -> None:
    sizer = BatchSizer(100, auto=True, upper=1000, budget=20.0)
    _grow(sizer, 10_000, answers=7)  # 100 x 3, 200 (a trial, taken), 200 x 3: 400 is the next trial
    assert (sizer.size, sizer.limit) == (200, 400)
    assert sizer.sending(400)
    assert sizer.limit == 200  # one trial at a time: the other batches keep the size that works
    assert sizer.too_slow(400)
    assert (sizer.size, sizer.ceiling, sizer.trial) == (200, 399, None)
    _grow(sizer, 10_000)
    assert 200 <= sizer.size <= 399


def test_a_size_that_worked_and_then_fails_is_halved() -> None:
    sizer = BatchSizer(400, auto=True, upper=1000, budget=20.0)  # as learned last time
    assert sizer.too_slow(400)
    assert sizer.size == 200
    sizer.refused(200)
    assert sizer.size == 100


def test_a_5xx_right_after_a_raise_goes_back_to_the_last_size_that_worked() -> None:
    sizer = BatchSizer(100, auto=True, upper=1000, budget=20.0)
    _grow(sizer, 10_000, answers=3)
    assert (sizer.limit, sizer.good) == (200, 100)
    assert sizer.sending(200)
    assert sizer.failed(200)
    assert sizer.limit == sizer.size == 100
    assert not sizer.failed(100)  # a size that worked: a plain retry


def _through(handler: Callable[[httpx.Request], httpx.Response], n: int, **settings: object) -> tuple:  # type: ignore[type-arg]
    """n records through an Uploader on a MockTransport (one batch, as a dispatcher would hand it)."""
    payloads = [Payload(f"E{i}", {"externalId": f"E{i}"}, b'{"externalId":"E%d"}' % i) for i in range(n)]

    async def nosleep(_: float) -> None:
        return None

    async def go():  # type: ignore[no-untyped-def]
        given = {"batch_auto": True, **settings}
        s = RunSettings(base_url="https://siro.test", token="t", rate_per_min=None, **given)  # type: ignore[arg-type]
        async with Uploader(s, transport=httpx.MockTransport(handler), sleep=nosleep) as up:
            return await up.send_batch(payloads), up

    return asyncio.run(go())


def test_a_timeout_halves_the_batch_and_its_records_are_sent_again() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sizes.append(len(body))
        if len(body) > 60:  # SIRO takes too long for these: the client gives up waiting
            raise httpx.ReadTimeout("timed out", request=request)
        data = [{"id": f"id-{b['externalId']}", "externalId": b["externalId"]} for b in body]
        return httpx.Response(200, json={"data": data})

    outcomes, up = _through(handler, 100)
    assert [o.status for o in outcomes] == ["synced"] * 100
    assert [o.siro_id for o in outcomes] == [f"id-E{i}" for i in range(100)]
    assert sizes == [100, 50, 50]  # not the same 100 again: halved, each record sent once more
    assert up.batch_limit == 50 and outcomes[0].attempts == 2


def test_a_fixed_size_retries_a_504_as_it_is() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sizes.append(len(body))
        if len(sizes) == 1:
            return httpx.Response(504, json={"message": "Gateway Timeout"})
        return httpx.Response(200, json={"data": [{"id": "x", "externalId": b["externalId"]} for b in body]})

    outcomes, _ = _through(handler, 100, batch_auto=False)
    assert {o.status for o in outcomes} == {"synced"} and sizes == [100, 100]


# -- the sandbox's hidden limits, over HTTP ---------------------------------------------------------


def _records(n: int, prefix: str = "R") -> list[dict[str, str]]:
    return [{"externalId": f"{prefix}{i}"} for i in range(n)]


def test_the_sandbox_refuses_a_batch_above_max_batch(hidden_siro: Hidden) -> None:
    server = hidden_siro(max_batch=3)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        assert c.put(BATCH, json=_records(4)).status_code == 413
        assert c.put(BATCH, json=_records(3)).status_code == 200
    assert sorted(server.state.records) == ["R0", "R1", "R2"]
    assert server.state.batch_lengths == [4, 3]


def test_the_sandbox_gateway_answers_504_and_the_function_stores_anyway(hidden_siro: Hidden) -> None:
    server = hidden_siro(work_ms=100, gateway_timeout=0.3)  # 4 records: 0.4 s of work
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        started = time.monotonic()
        r = c.put(BATCH, json=_records(4))
        took = time.monotonic() - started
        assert r.status_code == 504 and took >= 0.3
        deadline = time.monotonic() + 5
        while len(server.state.records) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the function behind the gateway is still at work
        assert sorted(server.state.records) == ["R0", "R1", "R2", "R3"]
        started = time.monotonic()
        assert c.put(BATCH, json=_records(2, "S")).status_code == 200  # 0.2 s: in time
        assert time.monotonic() - started >= 0.2
    assert server.state.stats()["gateway_timeouts"] == 1


def test_bulk_sync_sandbox_takes_the_hidden_limits_as_flags(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bulk_sync", "sandbox", "--port", "0", "--no-validate"]
    argv += ["--max-batch", "2", "--work-ms", "200", "--gateway-timeout", "0.3"]
    proc = cli_popen(argv, stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = ""
        while "listening on" not in line:
            line = proc.stdout.readline()
            assert line, "the sandbox did not start"
        url = line.split("listening on ")[1].split()[0]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert c.put(BATCH, json=_records(3)).status_code == 413
            assert c.put(BATCH, json=_records(2)).status_code == 504  # 0.4 s of work
            assert c.put(BATCH, json=_records(1)).status_code == 200  # 0.2 s
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the real CLI ----------------------------------------------------------------------------------


def _run(run_cli: RunCli, csv: Path, server: SandboxServer, tmp_path: Path, *more: str) -> CliResult:
    summary = tmp_path / "summary.json"
    res = run_cli(
        "run", csv, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-rep-check",
        "--rate-per-min", "0", "--summary-json", summary, *more,
    )  # fmt: skip
    assert res.code == 0, res.stderr
    return res


@pytest.mark.slow
def test_auto_learns_the_hidden_limit_and_the_next_run_starts_there(
    hidden_siro: Hidden, run_cli: RunCli, tmp_path: Path
) -> None:
    limit, rows = 200, 8000
    expected = make_file(tmp_path / "c.csv", rows)
    state = tmp_path / "state.db"
    server = hidden_siro(max_batch=limit, validate=False)
    res = _run(run_cli, tmp_path / "c.csv", server, tmp_path, "--state", state, "--concurrency", "4")
    assert server.state.records == expected
    assert [r["status"] for r in res.report] == ["synced"] * rows  # every row accounted for
    lengths = server.state.batch_lengths
    reached = next(i for i, n in enumerate(lengths) if 0.9 * limit <= n <= limit)
    later = lengths[reached:]
    refused = sum(n > limit for n in later)
    assert refused <= 6  # the search's trials: one batch each
    # below 0.9 N after that: batches of the old size still in flight (4 workers), the rest of each
    # refused trial sent again, the file's end
    small = [n for n in later if n < 0.9 * limit]
    assert len(small) <= 4 + refused + 2, later
    assert len(later) - refused - len(small) >= 20  # and most of the run went at the size learned
    summary = json.loads((tmp_path / "summary.json").read_text())
    learned = summary["batches"]["size"]
    assert summary["batches"]["learned"] is True and 0.9 * limit <= learned <= limit
    assert f"batches of {learned} records, learned" in res.stdout

    seen = len(lengths)
    _run(run_cli, tmp_path / "c.csv", server, tmp_path, "--state", state, "--full", "--concurrency", "4")
    assert server.state.batch_lengths[seen] == learned  # the next run starts at the size learned
    assert server.state.responses[413] == sum(n > limit for n in server.state.batch_lengths)


@pytest.mark.slow
def test_a_504_halves_the_batch_and_no_record_is_lost_or_doubled(
    hidden_siro: Hidden, run_cli: RunCli, tmp_path: Path
) -> None:
    rows = 16_000
    expected = make_file(tmp_path / "c.csv", rows)
    # 2 ms a record, the gateway gives up at 0.5 s: batches of 100 and 200 pass, 400 gets a 504
    server = hidden_siro(work_ms=2, gateway_timeout=0.5, validate=False)
    res = _run(run_cli, tmp_path / "c.csv", server, tmp_path, "--no-state", "--concurrency", "8")
    stats = server.state.stats()
    assert stats["gateway_timeouts"] >= 1
    lengths = server.state.batch_lengths
    first = lengths.index(max(lengths))  # the largest tried: the one that timed out
    assert max(lengths) >= 250
    assert all(n < max(lengths) for n in lengths[first + 1 :])  # never tried again
    assert server.state.records == expected  # nothing lost ...
    assert len(server.state.ids) == rows  # ... nor doubled: one record each, by externalId
    assert stats["rewritten"] >= 1  # the 504's records were stored by the late function and resent
    assert [r["status"] for r in res.report] == ["synced"] * rows
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["counts"]["synced"] == rows and summary["batches"]["size"] < max(lengths)


def test_a_batch_size_that_is_neither_auto_nor_a_number_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    make_file(tmp_path / "c.csv", 3)
    res = run_cli("run", tmp_path / "c.csv", "--mapping", EXAMPLE_MAPPING, "--sandbox", "--batch-size", "big")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "'big' is not `auto` or a whole number from 1 to 10000" in res.stderr


@pytest.mark.parametrize(("value", "ok"), [('"auto"', True), ("250", True), ('"big"', False), ("0", False)])
def test_a_profile_may_set_the_batch_size_to_auto_or_a_number(tmp_path: Path, value: str, ok: bool) -> None:
    from bulk_sync.config import load_profile
    from bulk_sync.errors import UsageError

    cfg = tmp_path / "bulk_sync.toml"
    cfg.write_text(f"[profiles.default]\nbatch_size = {value}\n")
    if ok:
        assert load_profile(cfg, None)["batch_size"] == json.loads(value)
    else:
        with pytest.raises(UsageError, match="batch_size"):
            load_profile(cfg, None)


def test_a_run_of_partial_batches_teaches_nothing_smaller() -> None:
    """A nightly run with 30 changed rows sends one batch of 30: that proves nothing against the
    size in force, and must not make the next night start at 30."""
    sizer = BatchSizer(100, auto=True, upper=1000, budget=20.0)
    sizer.answered(30, 0.1)
    assert sizer.learned == 100
    grown = BatchSizer(400, auto=True, upper=1000, budget=20.0)  # the size a migration learned
    grown.answered(55, 0.2)
    assert grown.learned == 400
    refused = BatchSizer(400, auto=True, upper=1000, budget=20.0)
    refused.refused(400)  # SIRO changed: 400 is too many now
    refused.answered(200, 0.2)
    assert refused.learned == 200
