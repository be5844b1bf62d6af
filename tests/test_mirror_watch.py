"""Issue 34, item 3, in the watch folder: a mirror route's drop that looks cut short is held (filed in
failed/ with the reason, nothing sent or deleted), with the watch folder's advice; dropped again with
`accept-truncation` at the end of its name, it is sent and the missing record soft-deleted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import EXAMPLE_MAPPING, appointments, cli_env, cli_run, dropped_earlier, files, watch_argv

from bulk_sync.sandbox import SandboxServer

pytestmark = pytest.mark.slow  # the watcher, three times


def _day_of(n: int) -> dt.date:
    return dt.date(2026, 3, 2 + min(n, 18))  # APT-00018 and APT-00019 share the last start


def test_a_cut_short_drop_is_held_until_dropped_again_as_accept_truncation(
    siro: SandboxServer, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "bulk_sync.toml"
    config.write_text(
        f'[profiles.default]\nstate = "{tmp_path / "state.sqlite3"}"\nno_rep_check = true\nmirror = true\n'
        f'mirror_window = "2026-03-01..2026-03-31"\n'
        f'[[watch.routes]]\nmatch = "*.csv"\nmapping = "{EXAMPLE_MAPPING}"\n'
    )

    def once() -> None:
        cli_run(
            watch_argv(inbox, "--once", "--base-url", siro.base_url, "--config", config),
            capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip

    dropped_earlier(appointments(inbox / "appointments.csv", list(range(20)), day_of=_day_of))
    once()
    assert len(siro.state.records) == 20 and not siro.state.soft_deleted
    sent = siro.state.requests
    dropped_earlier(appointments(inbox / "appointments.csv", list(range(19)), day_of=_day_of))
    once()
    why = next((inbox / "failed").glob("appointments-*-error.txt")).read_text()
    assert "mirror held: the file looks cut short" in why and "(APT-00019)" in why
    assert "drop the file again with `accept-truncation` at the end of its name" in why
    assert siro.state.requests == sent and not siro.state.soft_deleted  # held before anything
    dropped_earlier(
        appointments(inbox / "appointments accept-truncation.csv", list(range(19)), day_of=_day_of)
    )
    once()
    assert any(n.startswith("appointments accept-truncation-") for n in files(inbox / "done", ".csv"))
    assert set(siro.state.soft_deleted) == {"APT-00019"}
