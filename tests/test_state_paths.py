"""Issue 33, state path messages: a state path that cannot be a state file (a folder, a symlink
loop, a name with a line break, a path through a file) is one line naming what is wrong, exit 2,
nothing sent: for `run`, `validate` and `delete`, through the real CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, CliResult

from bulk_sync.errors import StateError
from bulk_sync.sandbox import SandboxServer
from bulk_sync.state import StateLock, StateStore, check_path


def bad_state(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A state path of ``kind``, and what the message must say (the path as it is shown)."""
    if kind == "folder":
        path = tmp_path / "states"
        path.mkdir()
        return path, f"the state path {path} is a folder, not a file; pass --state {path / 'state.sqlite3'}"
    if kind == "loop":
        path = tmp_path / "loop.sqlite3"
        os.symlink(path.name, path)  # a link to itself
        return path, f"the state path {path} is a symlink loop"
    if kind == "newline":
        path = tmp_path / "state\n.sqlite3"
        return path, f"the state path {str(path)!r} has a line break in it"
    path = tmp_path / "notes.txt" / "state.sqlite3"
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    return path, f"the state path {path} goes through a file as if it were a folder"


KINDS = ["folder", "loop", "newline", "through-a-file"]


def one_line(r: CliResult, says: str) -> None:
    assert r.code == 2, r.stdout + r.stderr
    assert r.stderr == f"error: {says}" + r.stderr[len(f"error: {says}") :]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_run_says_what_is_wrong_with_the_state_path(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path, kind: str
) -> None:
    path, says = bad_state(tmp_path, kind)
    r = run_cli(
        "run",
        EXAMPLE_CSV,
        "-m",
        EXAMPLE_MAPPING,
        "--base-url",
        siro.base_url,
        "--no-rep-check",
        "--state",
        path,
    )
    one_line(r, says)
    assert siro.state.requests == 0 and not siro.state.records


@pytest.mark.parametrize("kind", ["folder", "loop"])
def test_validate_says_it_too_rather_than_predicting_from_nothing(
    run_cli: Callable[..., CliResult], tmp_path: Path, kind: str
) -> None:
    path, says = bad_state(tmp_path, kind)
    one_line(run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--state", path), says)


@pytest.mark.parametrize("kind", KINDS)
def test_delete_says_it_before_deleting_anything(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path, kind: str
) -> None:
    path, says = bad_state(tmp_path, kind)
    ids = tmp_path / "ids.txt"
    ids.write_text("APT-1\n")
    r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--yes", "--state", path)
    one_line(r, says)
    assert siro.state.calls["delete"] == 0


def test_the_default_state_path_is_checked_the_same_way(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "odd\nhome"))
    r = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", siro.base_url, "--no-rep-check")
    default = tmp_path / "odd\nhome" / "bulk_sync" / "state.sqlite3"
    one_line(r, f"the state path {str(default)!r} has a line break in it")
    assert siro.state.requests == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_store_and_the_lock_refuse_them_too(tmp_path: Path, kind: str) -> None:
    path, says = bad_state(tmp_path, kind)
    for make in (check_path, StateLock, lambda p: StateStore(p, "t")):
        with pytest.raises(StateError) as caught:
            make(path)
        assert str(caught.value).startswith(says)


def test_a_good_path_new_or_old_passes(tmp_path: Path) -> None:
    check_path(tmp_path / "new" / "state.sqlite3")  # not there yet: made at the first acknowledgement
    store = StateStore(tmp_path / "s.sqlite3", "t")
    store.close()
    check_path(tmp_path / "s.sqlite3")
