"""helpers.cli_run and cli_popen, the tests' way to run the CLI: a fork of tests/forkserver.py (the
modules imported once) is what a new interpreter would be: the same exit code, output and files;
its own argv, working directory, standard input and sys.path[0]; a timeout kills it; in the
background it is watched, signalled and waited for as a Popen; and an environment that would act at
start-up or import sends the run to a new interpreter."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    FRESH,
    TESTS,
    ForkedPopen,
    cli_argv,
    cli_env,
    cli_popen,
    cli_run,
    without_timing,
)

SAYS_WHERE = (
    "import os, sys; print(sys.argv[1:], os.getcwd(), repr(sys.path[0]), sys.stdin.read()); "
    "print('bulk_sync.cli' in sys.modules); sys.exit(3)"
)


def _both(monkeypatch: pytest.MonkeyPatch, argv: list[str], **kw: object) -> tuple[object, object]:
    forked = cli_run(argv, **kw)  # type: ignore[arg-type]
    monkeypatch.setenv(FRESH, "1")
    fresh = cli_run(argv, **kw)  # type: ignore[arg-type]
    monkeypatch.delenv(FRESH)
    return forked, fresh


@pytest.mark.slow  # two new interpreters (~1.6 s of CPU): the full run checks the server this way
def test_a_forked_run_answers_and_writes_what_a_new_interpreter_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = []
    for name in ("forked", "fresh"):
        (tmp_path / name).mkdir()
        argv = cli_argv("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", "r.csv")
        if name == "fresh":
            monkeypatch.setenv(FRESH, "1")
        proc = cli_run(argv, capture_output=True, text=True, env=cli_env(), cwd=tmp_path / name, timeout=120)
        outputs.append((proc.returncode, without_timing(proc.stdout), proc.stderr))
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / name).glob("r*.csv")})
    assert outputs[0] == outputs[2] and outputs[0][0] == 1  # the example's invalid rows
    assert outputs[1] == outputs[3] and len(outputs[1]) == 2  # the report and the error file
    forked, fresh = _both(monkeypatch, cli_argv("--help"), capture_output=True, env=cli_env(), timeout=60)
    assert forked.stdout == fresh.stdout and forked.returncode == fresh.returncode == 0  # type: ignore[attr-defined]


def test_a_forked_child_has_its_own_argv_folder_path_and_input(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", SAYS_WHERE, "a b", "c"]
    proc = cli_run(argv, input="from stdin", capture_output=True, text=True, env=cli_env(), cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stdout == f"['a b', 'c'] {tmp_path} '' from stdin\nTrue\n"  # True: forked, modules loaded


@pytest.mark.parametrize(
    ("extra", "forked"),
    [
        ({"XDG_STATE_HOME": "/elsewhere", "BULK_SYNC_WORKERS": "0", "SIRO_API_TOKEN": "t"}, True),
        ({"SSL_CERT_FILE": "/etc/ssl/other.pem"}, False),  # aiohttp reads it at its import
        ({"PYTHONHASHSEED": "1"}, False),
        ({"TZ": "Asia/Tokyo"}, False),
    ],
)
def test_an_environment_read_at_start_up_gets_a_new_interpreter(
    tmp_path: Path, extra: dict[str, str], forked: bool
) -> None:
    argv = [sys.executable, "-c", SAYS_WHERE]
    proc = cli_run(argv, capture_output=True, text=True, env={**cli_env(), **extra}, cwd=tmp_path)
    assert proc.stdout.splitlines()[-1] == str(forked)


def test_past_its_timeout_a_forked_child_is_killed(tmp_path: Path) -> None:
    code = "import time; print('started', flush=True); time.sleep(60)"
    with pytest.raises(subprocess.TimeoutExpired) as info:
        cli_run([sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=1)
    assert info.value.output == b"started\n"


def test_a_forked_child_in_the_background_is_watched_signalled_and_waited_for(tmp_path: Path) -> None:
    code = "import sys, time; print(sys.stdin.readline().strip()[::-1], flush=True); time.sleep(60)"
    proc = cli_popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True,
                     env=cli_env(), cwd=tmp_path)  # fmt: skip
    assert isinstance(proc, ForkedPopen)
    proc.stdin.write("olleh\n")  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]
    assert proc.stdout.readline() == "hello\n" and proc.poll() is None  # type: ignore[union-attr]
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.2)
    proc.send_signal(signal.SIGINT)
    proc.stdin.close()  # type: ignore[union-attr]
    out, err = proc.communicate(timeout=30)
    assert out == "" and "KeyboardInterrupt" in err
    assert proc.returncode == -signal.SIGINT  # how an interpreter ends on a Ctrl-C nothing caught


@pytest.mark.slow  # a new interpreter importing everything; every server checks this as it starts
def test_the_fork_server_has_one_thread_when_it_forks() -> None:
    """fork() copies only the thread that calls it: a lock another thread held would stay held in
    every child. numpy's OpenBLAS starts a pool at import (a thread a core less one): the server,
    its imports done, has its main thread only (and refuses to serve otherwise)."""
    code = (
        f"import os, sys; sys.path.insert(0, {str(TESTS)!r}); import forkserver; forkserver.preload(); "
        "print(len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in cli_env().items() if not k.endswith("_NUM_THREADS")}  # as CI has them
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert (out.returncode, out.stdout) == (0, "1\n"), out.stderr
