"""Every example in the docs runs.

- Each ```yaml block of README.md and the docs site's pages (docs/) is a whole mapping, and loads; where a
  ```text block follows it, loading fails with exactly those problems (one per line).
- Where a ```csv block, a ```yaml mapping and a ```json block stand in that order, the sample file
  mapped by the mapping gives that outcome: one entry per engagement (a `group_by` group is one,
  under its first row), with its status and payload, errors or why it was skipped.
- Each ```toml block loads as a config file: every profile is valid, and a `[watch]` section's
  routes name mapping files that exist and profiles the block defines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, TOKEN, CliResult

from bulk_sync import inbox, payload, pipeline
from bulk_sync.cli.commands import check_routes
from bulk_sync.config import load_profile, load_watch
from bulk_sync.errors import MappingError, UsageError
from bulk_sync.mapping import parse_mapping
from bulk_sync.payload import target_catalog
from bulk_sync.pipeline import records, results
from bulk_sync.sandbox import SandboxServer

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    out = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if m:
            indent, lang, start = len(m.group(1)), m.group(2), i
            body = []
            i += 1
            while not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i][indent:])
                i += 1
            out.append(Block(doc, start + 1, lang, "\n".join(body) + "\n"))
        i += 1
    return out


ALL = [b for doc in DOCS for b in blocks(doc)]
YAML = [b for b in ALL if b.lang == "yaml"]
TOML = [b for b in ALL if b.lang == "toml"]


def _next(block: Block) -> Block | None:
    same = [b for b in ALL if b.doc == block.doc]
    i = same.index(block)
    return same[i + 1] if i + 1 < len(same) else None


def _prev(block: Block) -> Block | None:
    same = [b for b in ALL if b.doc == block.doc]
    i = same.index(block)
    return same[i - 1] if i > 0 else None


def outcomes(sample: Path, mapping_path: Path) -> list[dict[str, Any]]:
    """What the pipeline makes of ``sample``: rows read, mapped (and grouped), built and checked."""
    plan = pipeline.scan_columns(pipeline.prepare([sample], mapping_path))
    out: list[dict[str, Any]] = []
    for rec in records.mapped_records(plan, None):
        if isinstance(rec, results.Skipped):  # a footer: a totals row, stop_at, or below one
            out.append({"row": rec.row_number, "status": "skipped", "why": rec.reason})
            continue
        if rec.skip:
            out.append({"row": rec.row_number, "status": "skipped", "why": rec.skip})
            continue
        built = payload.build(rec, plan.spec.resource)
        if isinstance(built, list):
            out.append(
                {"row": rec.row_number, "status": "invalid", "errors": [[e.slug, e.column] for e in built]}
            )
        else:
            out.append({"row": rec.row_number, "status": "valid", "payload": built.body})
    return out


def test_the_docs_hold_examples() -> None:
    assert len(YAML) >= 15 and len(TOML) >= 2
    assert sum(1 for b in YAML if (_prev(b) or b).lang == "csv" and (_next(b) or b).lang == "json") >= 10


@pytest.mark.parametrize("block", YAML, ids=[b.where for b in YAML])
def test_yaml_example_loads(block: Block) -> None:
    after = _next(block)
    if after is not None and after.lang == "text":  # the example shows the error it gets
        with pytest.raises(MappingError) as err:
            parse_mapping(block.text, target_catalog, "example")
        got = str(err.value)
        for line in after.text.strip().splitlines():
            assert line in got, f"{block.where}: {line!r} not in {got!r}"
        return
    parse_mapping(block.text, target_catalog, block.where)


SAMPLES = [b for b in YAML if (_prev(b) or b).lang == "csv" and (_next(b) or b).lang == "json"]


@pytest.mark.parametrize("block", SAMPLES, ids=[b.where for b in SAMPLES])
def test_sample_gives_the_documented_outcome(block: Block, tmp_path: Path) -> None:
    sample, outcome = _prev(block), _next(block)
    assert sample is not None and outcome is not None
    (tmp_path / "sample.csv").write_text(sample.text, encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(block.text, encoding="utf-8")
    got = outcomes(tmp_path / "sample.csv", tmp_path / "mapping.yaml")
    assert got == json.loads(outcome.text), f"{block.where}: {json.dumps(got)}"


@pytest.mark.parametrize("block", TOML, ids=[b.where for b in TOML])
def test_toml_example_loads(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bulk_sync.toml"
    config.write_text(block.text, encoding="utf-8")
    _check_config(config, monkeypatch)


def test_the_example_config_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    _check_config(ROOT / "bulk_sync.example.toml", monkeypatch)


def _check_config(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    data: dict[str, Any] = tomllib.loads(config.read_text(encoding="utf-8"))
    for name in data.get("profiles", {}):
        profile = load_profile(config, name)
        if "mapping" in profile:
            assert (ROOT / profile["mapping"]).is_file(), (
                f"{config}: profile {name} names {profile['mapping']}"
            )
    if "watch" in data:
        monkeypatch.chdir(ROOT)  # the routes' mapping paths are relative to where the watcher runs
        routes = inbox.routes_from(load_watch(config).routes, None)
        assert routes
        check_routes(routes, config)


def test_a_watch_route_naming_a_missing_mapping_or_profile_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README once named mappings/salesforce_events.yaml and an undefined profile: every dropped
    file went to failed/. Such a config is now one error when the watcher starts."""
    monkeypatch.chdir(ROOT)
    config = tmp_path / "bulk_sync.toml"
    config.write_text('[[watch.routes]]\nmatch = "*.csv"\nmapping = "mappings/salesforce_events.yaml"\n')
    with pytest.raises(UsageError, match=r"salesforce_events\.yaml, which does not exist"):
        check_routes(inbox.routes_from(load_watch(config).routes, None), config)
    config.write_text(
        '[[watch.routes]]\nmatch = "*.csv"\nmapping = "mappings/engagements.yaml"\nprofile = "nightly"\n'
    )
    with pytest.raises(UsageError, match="no profile 'nightly'"):
        check_routes(inbox.routes_from(load_watch(config).routes, None), config)


@pytest.mark.slow
def test_documented_samples_reach_siro_as_documented(
    run_cli: Callable[..., CliResult], sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    """The same samples through the real CLI over HTTP: SIRO (the sandbox) holds exactly the
    documented payloads, and the report gives each row the documented status."""
    server = sandbox()
    status = {"valid": "synced", "invalid": "invalid", "skipped": "skipped"}
    for block in SAMPLES:
        sample, outcome = _prev(block), _next(block)
        assert sample is not None and outcome is not None
        (tmp_path / "sample.csv").write_text(sample.text, encoding="utf-8")
        (tmp_path / "mapping.yaml").write_text(block.text, encoding="utf-8")
        server.state.records.clear()
        server.state.opportunities.clear()
        res = run_cli(
            "run", tmp_path / "sample.csv", "-m", tmp_path / "mapping.yaml", "--base-url", server.base_url,
            "--state", tmp_path / f"state-{block.line}.sqlite3",
        )  # fmt: skip
        want = json.loads(outcome.text)
        assert res.code == (0 if all(o["status"] != "invalid" for o in want) else 1), (
            block.where,
            res.stderr,
        )
        held = server.state.opportunities if "resource: opportunities" in block.text else server.state.records
        assert held == {o["payload"]["externalId"]: o["payload"] for o in want if o["status"] == "valid"}, (
            block.where
        )
        by_row = {int(r["row_number"]): r["status"] for r in res.report}
        for o in want:
            assert by_row[o["row"]] == status[o["status"]], (block.where, o["row"], res.report)


PYTHON = [b for b in ALL if b.lang == "python"]


def test_the_docs_hold_python_examples() -> None:
    assert any(b.doc.name == "python-api.md" for b in PYTHON)


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.where)
def test_python_example_runs(block: Block, siro: SandboxServer, tmp_path: Path) -> None:
    """Each ```python block runs as written, in a folder holding the project's mappings/ and
    example_data/, with $SIRO_API_TOKEN and $SIRO_BASE_URL naming a sandbox on 127.0.0.1."""
    for folder in ("mappings", "example_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "example.py").write_text(block.text, encoding="utf-8")
    env = {**os.environ, "SIRO_API_TOKEN": TOKEN, "SIRO_BASE_URL": siro.base_url}
    proc = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{block.where}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{block.where} printed nothing"
    assert list((tmp_path / "reports").glob("*.csv")), "no report written"
