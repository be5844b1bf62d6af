"""Shared fixtures: a SIRO sandbox on loopback, the real CLI in a subprocess, SIRO's schema. The plain
helpers (paths, the token, command lines, example-shaped files) are in helpers.py."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helpers
import pytest
import yaml
from helpers import SCHEMA, TOKEN, CliResult, chromium, cli_argv, cli_env, cli_run
from jsonschema import Draft202012Validator

from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults, SandboxServer


def pytest_configure(config: pytest.Config) -> None:
    """The quick loop (-m "not slow"): the property tests try fewer examples (helpers.examples)."""
    helpers.QUICK_LOOP = "not slow" in (config.getoption("markexpr") or "")


@pytest.fixture
def sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Factory: start a sandbox (with optional faults) on 127.0.0.1; stopped after the test."""
    servers: list[SandboxServer] = []

    def start(faults: Faults | None = None, token: str = TOKEN) -> SandboxServer:
        server = SandboxServer(token, faults).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def siro() -> Iterator[SandboxServer]:
    """One sandbox without faults, on 127.0.0.1, for the test (SIRO, as the tests of a feature see it)."""
    server = SandboxServer(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _private_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's default state file goes under the test's tmp dir, never the real home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run `python -m bulk_sync ARGS` as a subprocess; read its report back."""

    def run(*args: str | Path, token: str | None = TOKEN, timeout: float = 120) -> CliResult:
        report = tmp_path / "report.csv"
        argv = cli_argv(*args)
        if args and args[0] in {"run", "validate", "retry"} and "--report" not in args:
            argv += ["--report", str(report)]
        rep_flags = {"--base-url", "--no-rep-check", "--require-known-reps", "--token-file"}
        if args and args[0] == "validate" and not rep_flags & set(map(str, args)):
            argv.append("--no-rep-check")  # production SIRO is not reachable from the tests
        proc = cli_run(
            argv, capture_output=True, text=True, env=cli_env(token), timeout=timeout, cwd=tmp_path
        )
        rows = read_report(report) if report.exists() else []
        return CliResult(proc.returncode, proc.stdout, proc.stderr, rows)

    return run


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    return {"anyOf": [{"type": "null"}, out]} if node.get("nullable") else out


@pytest.fixture(scope="session")
def validator() -> Draft202012Validator:
    """SIRO's engagement body as JSON Schema, converted here from tests/schema/ (independently of
    the sandbox's own conversion)."""
    components = _nullable(yaml.safe_load(SCHEMA.read_text())["components"])
    return Draft202012Validator(
        {"$ref": "#/components/schemas/EngagementSyncInput", "components": components}
    )


@pytest.fixture(scope="session")
def opportunity_validator() -> Draft202012Validator:
    """SIRO's opportunity body (OpportunitySyncInput) as JSON Schema, from tests/schema/."""
    components = _nullable(yaml.safe_load(SCHEMA.read_text())["components"])
    return Draft202012Validator(
        {"$ref": "#/components/schemas/OpportunitySyncInput", "components": components}
    )


@pytest.fixture
def hidden_siro(sandbox: Callable[..., SandboxServer]) -> Callable[..., SandboxServer]:
    """Factory: a sandbox playing a SIRO with hidden limits (issue 38): ``max_batch`` (413 above it),
    ``work_ms`` a record, ``gateway_timeout`` seconds (then 504, the records stored all the same)."""

    def start(
        max_batch: int | None = None, work_ms: float = 0.0, gateway_timeout: float | None = None, **more: Any
    ) -> SandboxServer:
        faults = Faults(
            max_batch=max_batch, work_per_record=work_ms / 1000.0, gateway_timeout=gateway_timeout, **more
        )
        return sandbox(faults)

    return start


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through Selenium, for the test (the browser tests skip without it)."""
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def _no_child_left_running() -> Iterator[None]:
    """A process a test started (a CLI run, forked or not, a browser's driver) has ended by the time
    the test is over: one left running would take a core from the tests after it, or write to their
    files. Given 10 s to end; then killed, and the test fails naming it."""
    before = set(helpers.running_children())
    yield
    deadline = time.monotonic() + 10
    while (left := {p: c for p, c in helpers.running_children().items() if p not in before}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"the test left processes running (killed now): {left}"
