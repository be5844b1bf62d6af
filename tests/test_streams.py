"""Streams (issue 33): ``-`` reads standard input, a FIFO or ``<(zcat ...)`` is read once (kept in a
temporary file of the run, up to a cap), a device such as /dev/zero is refused at once. Each of
these used to wait forever with no output. Real FIFOs, real pipes, the real CLI; each with a timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import Sandbox, cli_argv, cli_env, cli_popen, cli_run

from bulk_sync.report import read_report

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero")

MAPPING = "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  startTime: Start\n"
ROWS = 40
CSV = "Id,Subject,Start\n" + "".join(f"E-{i:03d},Visit {i},2024-03-05T10:00:00Z\n" for i in range(ROWS))


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    m = tmp_path / "m.yaml"
    m.write_text(MAPPING)
    return m


def _env(tmp_path: Path) -> dict[str, str]:
    spool = tmp_path / "tmp"
    spool.mkdir(exist_ok=True)
    return {**cli_env(), "TMPDIR": str(spool)}  # the run's temporary folder, to see it removed


def _validate(tmp_path: Path, m: Path, source: str, **kw: object) -> subprocess.CompletedProcess[str]:
    argv = cli_argv("validate", source, "-m", m, "--no-rep-check", "--report", tmp_path / "r.csv")
    return cli_run(argv, capture_output=True, text=True, env=_env(tmp_path), timeout=60, **kw)  # type: ignore[call-overload,no-any-return]


def _numbers(tmp_path: Path) -> list[int]:
    return [int(r["row_number"]) for r in read_report(tmp_path / "r.csv")]


def test_standard_input_is_read_with_a_dash(tmp_path: Path, mapping_file: Path) -> None:
    res = _validate(tmp_path, mapping_file, "-", input=CSV)
    assert res.returncode == 0, res.stderr
    assert _numbers(tmp_path) == list(range(2, ROWS + 2))
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary copy is gone


def test_a_run_from_standard_input_sends_every_row(
    sandbox: Sandbox, tmp_path: Path, mapping_file: Path
) -> None:
    server = sandbox()
    argv = cli_argv("run", "-", "-m", mapping_file, "--base-url", server.base_url, "--no-state",
                    "--report", tmp_path / "r.csv")  # fmt: skip
    res = cli_run(argv, input=CSV, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert res.returncode == 0, res.stderr
    assert len(server.state.records) == ROWS
    assert {r["status"] for r in read_report(tmp_path / "r.csv")} == {"synced"}


def test_a_named_fifo_is_read_once_when_its_writer_comes(tmp_path: Path, mapping_file: Path) -> None:
    fifo = tmp_path / "export.csv"
    os.mkfifo(fifo)

    def write_later() -> None:
        time.sleep(1.5)  # (the run may or may not be waiting yet: either way it reads it once)
        with fifo.open("w") as fh:
            fh.write(CSV[:100])
            fh.flush()
            time.sleep(0.2)
            fh.write(CSV[100:])

    writer = threading.Thread(target=write_later)
    writer.start()
    res = _validate(tmp_path, mapping_file, str(fifo))
    writer.join()
    assert res.returncode == 0, res.stderr
    assert _numbers(tmp_path) == list(range(2, ROWS + 2))


def test_process_substitution_is_read(tmp_path: Path, mapping_file: Path) -> None:
    data = tmp_path / "export.csv"
    data.write_text(CSV)
    argv = " ".join(cli_argv("validate", "<(cat " + str(data) + ")", "-m", mapping_file, "--no-rep-check",
                             "--report", tmp_path / "r.csv"))  # fmt: skip
    res = subprocess.run(["bash", "-c", argv], capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert res.returncode == 0, res.stderr
    assert _numbers(tmp_path) == list(range(2, ROWS + 2))


def test_a_fifo_nobody_writes_to_waits_saying_so_and_ctrl_c_ends_it(
    tmp_path: Path, mapping_file: Path
) -> None:
    fifo = tmp_path / "never.csv"
    os.mkfifo(fifo)
    argv = cli_argv("validate", fifo, "-m", mapping_file, "--no-rep-check", "--report", tmp_path / "r.csv")
    with (tmp_path / "err.txt").open("w") as err:
        proc = cli_popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=_env(tmp_path))
        deadline = time.monotonic() + 30
        while "waiting for" not in (tmp_path / "err.txt").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 2
    said = (tmp_path / "err.txt").read_text()
    assert f"waiting for {fifo} to be written (Ctrl-C stops)" in said
    assert "stopped by SIGINT before any row was read: nothing was sent" in said
    assert "Traceback" not in said
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_device_is_refused_at_once(tmp_path: Path, mapping_file: Path) -> None:
    started = time.monotonic()
    res = _validate(tmp_path, mapping_file, "/dev/zero")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "error: /dev/zero: is a device, not a file: pass a file, or - to read standard input "
        "(bulk-sync run - < file)"
    )
    assert time.monotonic() - started < 30


def test_standard_input_that_is_a_device_is_refused(tmp_path: Path, mapping_file: Path) -> None:
    with open(os.devnull, "rb") as null:
        res = _validate(tmp_path, mapping_file, "-", stdin=null)
    assert res.returncode == 2
    assert "standard input is a terminal or a device: pipe the file in" in res.stderr


CAPPED = (
    "import runpy, sys\n"
    "import bulk_sync.cli.streams as s\n"
    "s.STREAM_MAX_BYTES = int(sys.argv.pop(1))\n"
    "runpy.run_module('bulk_sync', run_name='__main__', alter_sys=True)\n"
)


def test_a_stream_past_the_cap_is_refused_saying_how_to_read_it(tmp_path: Path, mapping_file: Path) -> None:
    argv = [sys.executable, "-c", CAPPED, "500", "validate", "-", "-m", str(mapping_file), "--no-rep-check",
            "--report", str(tmp_path / "r.csv")]  # fmt: skip
    res = cli_run(argv, input=CSV, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert res.returncode == 2
    assert "error: standard input: more than 500 bytes came through the pipe" in res.stderr
    assert "save it to a file and pass the file's name" in res.stderr
    assert list((tmp_path / "tmp").iterdir()) == []
