"""Issue 33: every shape of token gets one line, never a traceback; a token file every user may read
gets a warning naming `chmod 600`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN, cli_argv, cli_env, cli_run

from bulk_sync.errors import UsageError
from bulk_sync.settings import read_token, token_file_warning

SECRET = "tok-7f3a9c2e5b1d"

# (token file bytes, words of the one line)
FILE_SHAPES = [
    (f"{SECRET[:6]}\r\n{SECRET[6:]}\n".encode(), "has 2 lines"),
    (f"{SECRET[:6]}\r{SECRET[6:]}".encode(), "has 2 lines"),
    (f"{SECRET}\n{SECRET}\n".encode(), "has 2 lines"),
    (b"", "is empty"),
    (b" \n\n", "is empty"),
    (f"{SECRET[:6]} {SECRET[6:]}".encode(), "holds a space (character 7 of 17)"),
    (f"{SECRET[:6]}\x00{SECRET[6:]}".encode(), "holds a control character"),
    (f"{SECRET[:6]}\u00e9{SECRET[6:]}".encode(), "holds a non-ASCII character"),
    (b"\xff\xfe\x00t", "is not text (not UTF-8)"),
]


@pytest.mark.parametrize(("content", "words"), FILE_SHAPES)
def test_a_token_file_of_a_shape_no_header_can_carry_is_one_line(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(words)) as info:
        read_token(str(path), env={})
    assert SECRET not in str(info.value) and SECRET[:6] not in str(info.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [(f"{SECRET[:6]}\r\n{SECRET[6:]}", "holds a line break"), (f"a\tb{SECRET}", "holds a space")],
)
def test_a_token_in_the_environment_of_a_bad_shape_is_one_line(value: str, words: str) -> None:
    with pytest.raises(UsageError, match=f"^\\$SIRO_API_TOKEN {words}"):
        read_token(None, env={"SIRO_API_TOKEN": value})


def test_a_good_token_file_is_read_whatever_its_line_ending(tmp_path: Path) -> None:
    for ending in ("", "\n", "\r\n"):
        (tmp_path / "t").write_text(f"  {SECRET}{ending}", newline="")
        assert read_token(str(tmp_path / "t"), env={}).get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("content", "words"), [FILE_SHAPES[0], FILE_SHAPES[3], FILE_SHAPES[5], FILE_SHAPES[8]]
)
def test_the_cli_says_one_line_for_a_bad_token_file(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(0o600)
    argv = cli_argv(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", "http://127.0.0.1:9/api-externalApi",
        "--token-file", path, "--report", tmp_path / "r.csv", "--no-state",
    )  # fmt: skip
    proc = cli_run(argv, capture_output=True, text=True, env=cli_env(None), timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr
    assert SECRET[:6] not in proc.stderr + proc.stdout


def test_a_token_file_every_user_may_read_gets_a_warning_naming_chmod_600(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o644)
    assert token_file_warning(str(path)) == (
        f"warning: the token file {path} can be read by every user of this machine (mode 644): "
        f"chmod 600 {path}"
    )
    argv = cli_argv("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--token-file", path, "--no-rep-check")
    proc = cli_run(argv, capture_output=True, text=True, env=cli_env(None), timeout=60, cwd=tmp_path)
    assert f"chmod 600 {path}" in proc.stderr and "Traceback" not in proc.stderr
    path.chmod(0o640 if os.name == "posix" else 0o600)
    assert token_file_warning(str(path)) is None
    proc = cli_run(argv, capture_output=True, text=True, env=cli_env(None), timeout=60, cwd=tmp_path)
    assert "chmod" not in proc.stderr
