"""The docs site (docs/, MkDocs): its generated pages are what the code says, the tutorial's commands
run in order with the exit codes it shows, the README stays a front door, and the site builds with
--strict (no broken link) where MkDocs is installed (`pip install '.[docs]'`; CI installs it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, cli_env, cli_run
from make_docs import PAGES, WIDTH, commands

TUTORIAL = ROOT / "docs" / "tutorial.md"
SKIP = "<!-- not run:"


@pytest.mark.parametrize("page", list(PAGES), ids=lambda p: p.name)
def test_the_generated_pages_are_up_to_date(page: Path) -> None:
    assert page.read_text(encoding="utf-8") == PAGES[page](), f"run: python tests/make_docs.py ({page.name})"


@pytest.mark.parametrize("command", ["", *commands()])
def test_the_cli_page_shows_what_help_prints(command: str) -> None:
    """The page is generated in-process; the real entry point prints the same text."""
    argv = [sys.executable, "-m", "bulk_sync", *([command] if command else []), "--help"]
    env = {**cli_env(), "COLUMNS": WIDTH}
    printed = cli_run(argv, capture_output=True, text=True, env=env, timeout=60).stdout
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert f"```text\n{printed}```" in page


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def _tutorial_commands() -> list[tuple[str, int]]:
    """The tutorial's commands, in order, with the exit code each must give."""
    text = TUTORIAL.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"(<!--[^\n]*-->\n)?```bash\n(.*?)```", text, re.S):
        if m.group(1) and m.group(1).startswith(SKIP):
            continue
        for line in m.group(2).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((line, 1 if line.rstrip().endswith("# exits 1") else 0))
    return out


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    for folder in ("example_data", "mappings"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    bin_dir = Path(sys.executable).parent  # bulk-sync, installed beside this python
    # a newcomer has no token yet (with one, validate would ask SIRO itself for its users)
    env = {**cli_env(token=None), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    steps = _tutorial_commands()
    assert len(steps) >= 6
    for line, code in steps:
        proc = subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        assert proc.returncode == code, f"{line}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
    assert "synced             1" in proc.stdout  # the fixed row, sent again


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="pip install '.[docs]' for MkDocs")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "tutorial" / "index.html").exists()
