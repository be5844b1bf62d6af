"""The scheduling snippets of docs/how-to/nightly-job.md work when pasted: each cron entry is one
line that runs under cron's minimal environment (sh -c, PATH=/usr/bin:/bin), and the systemd units
pass `systemd-analyze verify` where it is installed.

The snippets name production paths (/srv/bulk_sync, /etc/bulk_sync, /var/lib/bulk_sync); the tests
move those under the test's tmp folder and point the config at a sandbox on 127.0.0.1, and change
nothing else in the line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TOKEN

from bulk_sync.sandbox import SandboxServer

SCHEDULING = (ROOT / "docs" / "how-to" / "nightly-job.md").read_text(encoding="utf-8")
CRON = re.findall(r"```cron\n(.*?)```", SCHEDULING, re.S)
UNITS = re.findall(r"```ini\n(# /etc/systemd/system/(\S+)\n.*?)```", SCHEDULING, re.S)
CRON_FIELD = r"(\*|[0-9,/*-]+)"
BULK_SYNC = Path(sys.executable).parent / "bulk-sync"  # the entry point pip installed beside python


def _cron_lines() -> list[str]:
    return [line for block in CRON for line in block.splitlines() if line and not line.startswith("#")]


def _moved(text: str, root: Path) -> str:
    """The snippet with its production folders moved under ``root``."""
    for top in ("/srv/", "/etc/bulk_sync/", "/var/lib/bulk_sync/", "/var/log/bulk_sync/"):
        text = text.replace(top, f"{root}{top}")
    return text


def test_the_page_has_cron_entries_and_units() -> None:
    assert len(_cron_lines()) >= 2
    assert {name for _, name in UNITS} >= {
        "bulk-sync-import.service",
        "bulk-sync-import.timer",
        "bulk-sync-watch.service",
        "bulk-sync-nightly.service",
        "bulk-sync-nightly.timer",
    }


@pytest.mark.parametrize("line", _cron_lines())
def test_each_cron_entry_is_one_line_with_an_absolute_command(line: str) -> None:
    m = re.match(rf"^{CRON_FIELD}\s+{CRON_FIELD}\s+{CRON_FIELD}\s+{CRON_FIELD}\s+{CRON_FIELD}\s+(.+)$", line)
    assert m, f"not a crontab line: {line!r}"
    command = m.group(6)
    assert not command.rstrip().endswith("\\"), "cron has no line continuation"
    called = re.findall(r"(?:^|&&\s*|;\s*)(\S*bulk-sync)\s", command)
    assert called and all(c.startswith("/") for c in called), f"bulk-sync without its absolute path: {called}"


@pytest.mark.slow
@pytest.mark.parametrize("line", _cron_lines())
def test_each_cron_entry_runs_under_crons_environment(line: str, tmp_path: Path, siro: SandboxServer) -> None:
    home = tmp_path / "srv" / "bulk_sync"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "bulk-sync").symlink_to(BULK_SYNC)
    shutil.copytree(ROOT / "mappings", home / "mappings")
    (tmp_path / "srv" / "exports").mkdir()
    shutil.copy(ROOT / "example_data" / "engagements.csv", tmp_path / "srv" / "exports" / "appointments.csv")
    for folder in ("etc/bulk_sync", "var/lib/bulk_sync", "var/log/bulk_sync"):
        (tmp_path / folder).mkdir(parents=True)
    token = tmp_path / "etc" / "bulk_sync" / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    state = tmp_path / "var" / "lib" / "bulk_sync" / "appointments.sqlite3"
    # production SIRO is the sandbox here; the nightly profile as the configuration page shows it,
    # less its webhook (no traffic leaves this machine)
    (home / "bulk_sync.toml").write_text(
        f'[profiles.default]\nbase_url = "{siro.base_url}"\nreport_dir = "reports"\n\n'
        f'[profiles.nightly]\nbase_url = "{siro.base_url}"\nmapping = "mappings/engagements.yaml"\n'
        f'token_file = "{token}"\nstate = "{state}"\nreport_dir = "reports"\n'
        f'log_file = "{tmp_path}/var/log/bulk_sync/nightly.log"\nlog_format = "json"\n'
    )
    command = _moved(line.split(None, 5)[5], tmp_path)
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh", "LANG": "C"}
    proc = subprocess.run(
        ["/bin/sh", "-c", command], env=cron_env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr  # the example has 5 invalid rows: exit 1, as documented
    printed = proc.stdout.splitlines()  # --quiet: only the report's path (cron mails what is printed)
    assert printed and all(line.startswith(("report:", "error file")) for line in printed), printed
    assert len(siro.state.records) == 55
    assert list((home / "reports").glob("*.csv"))
    assert state.exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    (tmp_path / "srv" / "bulk_sync" / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "srv" / "bulk_sync" / ".venv" / "bin" / "bulk-sync").symlink_to(BULK_SYNC)
    paths = []
    for text, name in UNITS:
        path = tmp_path / name
        path.write_text(_moved(text, tmp_path))
        paths.append(path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said
    assert "Unknown" not in said and "bad" not in said, said
    for text, name in UNITS:
        if name.endswith(".service"):
            assert "Wants=network-online.target" in text and "After=network-online.target" in text, name
