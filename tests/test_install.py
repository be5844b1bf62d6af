"""bulk_sync installs as an application with pipx (its own virtual environment, `bulk-sync` on
PATH), and the installed command runs the example against the sandbox. Slow: pipx builds the
project and installs its dependencies (from pip's cache when it has them)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pipx") is None, reason="pip install pipx (in the test extras)")
def test_pipx_install_gives_a_working_bulk_sync(tmp_path: Path) -> None:
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    source = tmp_path / "src"  # a copy: pipx builds in the project folder, the checkout stays clean
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", "site", "reports", "*.egg-info", "build", "__pycache__"),
    )
    installed = subprocess.run(
        [sys.executable, "-m", "pipx", "install", str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    exe = bin_dir / "bulk-sync"
    work = tmp_path / "work"
    shutil.copytree(ROOT / "example_data", work / "example_data")
    shutil.copytree(ROOT / "mappings", work / "mappings")
    argv = [str(exe), "run", "example_data/engagements.csv", "-m", "mappings/engagements.yaml", "--sandbox"]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert run.returncode == 1, run.stderr  # the example's 5 invalid rows
    assert "synced            55" in run.stdout
