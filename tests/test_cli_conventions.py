"""The command line follows the conventions of the tools people like: progress a person can trust
outside a terminal, a rehearsal that says how it is paced."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, cli_argv, cli_env, cli_run

from bulk_sync.sandbox import Faults

EXAMPLE = ROOT / "example_data" / "engagements.csv"
MAPPING = ROOT / "mappings" / "engagements.yaml"


def _run(tmp_path: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return cli_run(
        cli_argv(*args), capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=timeout
    )


@pytest.mark.slow
def test_a_run_outside_a_terminal_says_it_is_alive(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    siro = sandbox(Faults(latency=0.3))
    log = tmp_path / "run.log"
    common = [EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state", "--batch-size", "5"]
    common += ["--concurrency", "1", "--heartbeat", "0.25", "--log-file", log, "--log-format", "json"]
    proc = _run(tmp_path, "run", *common)
    assert proc.returncode == 1, proc.stderr  # 5 invalid rows in the example
    beats = [line for line in proc.stderr.splitlines() if line.startswith("bulk-sync: ")]
    assert len(beats) >= 3, proc.stderr  # 11 requests of 0.3 s, a beat every 0.25 s
    assert "rows/s" in beats[-1] and "synced so far" in beats[-1] and " of ~" in beats[-1]
    logged = [json.loads(line)["msg"] for line in log.read_text().splitlines()]
    assert sum(m.startswith("bulk-sync: ") for m in logged) >= 3
    # --quiet: nothing on stderr, the log still has them
    log.unlink()
    quiet = _run(tmp_path, "run", *common, "--quiet")
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("bulk-sync: ")]
    assert any(json.loads(line)["msg"].startswith("bulk-sync: ") for line in log.read_text().splitlines())


@pytest.mark.slow
def test_heartbeat_zero_is_silent(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    siro = sandbox(Faults(latency=0.3))
    proc = _run(
        tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state",
        "--batch-size", "10", "--concurrency", "1", "--heartbeat", "0",
    )  # fmt: skip
    assert proc.returncode == 1
    assert not [line for line in proc.stderr.splitlines() if line.startswith("bulk-sync: ")]


@pytest.mark.slow
def test_a_paced_sandbox_run_says_so(tmp_path: Path) -> None:
    proc = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox")
    assert "paced at 1000 requests/min as SIRO; --rate-per-min 0 for full speed" in proc.stdout
    fast = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--rate-per-min", "0")
    assert "paced at" not in fast.stdout


def _production_like(tmp_path: Path, hook: str) -> Path:
    """A nightly profile as the README shows one, its production folders under tmp_path/prod."""
    prod = tmp_path / "prod"
    config = tmp_path / "bulk_sync.toml"
    config.write_text(
        f'[profiles.nightly]\nbase_url = "https://functions.siro.ai/api-externalApi"\n'
        f'mapping = "{MAPPING}"\nstate = "{prod}/var/lib/appointments.sqlite3"\n'
        f'report_dir = "{prod}/reports"\n'
        f'notify_url = "{hook}"\nlog_file = "{prod}/var/log/nightly.log"\nlog_format = "json"\n'
    )
    return config


class _Hook:
    """A webhook receiver on 127.0.0.1 that counts what is posted to it."""

    def __init__(self) -> None:
        import http.server
        import threading

        posts = self.posts = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                posts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_sandbox_rehearsal_of_a_production_profile_touches_none_of_its_places(tmp_path: Path) -> None:
    hook = _Hook()
    try:
        config = _production_like(tmp_path, hook.url)
        proc = _run(tmp_path, "run", EXAMPLE, "--config", config, "--profile", "nightly", "--sandbox")
    finally:
        hook.close()
    assert proc.returncode == 1, proc.stderr  # the example's 5 invalid rows
    assert "sandbox rehearsal with the profile 'nightly'" in proc.stdout
    for key in ("base_url", "state", "log_file", "report_dir", "notify_url"):
        assert key in proc.stdout.splitlines()[0]
    bare = tmp_path / "bare.toml"  # a profile that names no report folder: the rehearsal's go apart too
    bare.write_text(f'[profiles.nightly]\nmapping = "{MAPPING}"\n')
    other = tmp_path / "other"
    other.mkdir()
    again = _run(other, "run", EXAMPLE, "--config", bare, "--profile", "nightly", "--sandbox")
    assert "reports go to bulk_sync-sandbox/reports/" in again.stdout
    assert not (other / "reports").exists() and list((other / "bulk_sync-sandbox" / "reports").glob("*.csv"))
    assert not (tmp_path / "prod").exists()  # no state, log, report or summary there
    assert hook.posts == []
    sandbox_dir = tmp_path / "bulk_sync-sandbox"
    assert list((sandbox_dir / "reports").glob("*.csv")) and (sandbox_dir / "nightly.log").exists()
    summaries = list((sandbox_dir / "reports").glob("*-summary.json"))
    assert summaries and json.loads(summaries[0].read_text())["counts"]["synced"] == 55


def test_a_flag_on_the_command_line_wins_and_a_conflict_names_its_sides(tmp_path: Path) -> None:
    hook = _Hook()
    try:
        config = _production_like(tmp_path, hook.url)
        typed = tmp_path / "typed-reports"
        proc = _run(
            tmp_path, "run", EXAMPLE, "--config", config, "--profile", "nightly", "--sandbox",
            "--report-dir", typed,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert list(typed.glob("*.csv"))  # typed: kept, even in a rehearsal
        assert "report_dir" not in proc.stdout.splitlines()[0]
        both = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--base-url", "https://x.example")
    finally:
        hook.close()
    assert both.returncode == 2
    assert "--sandbox and --base-url exclude each other (both given on the command line)" in both.stderr


def test_config_errors_are_plain_and_suggest_the_key_meant(tmp_path: Path) -> None:
    config = tmp_path / "bulk_sync.toml"
    config.write_text('[profiles.default]\nrate_per_min = "fast"\nconcurency = 4\nreport_xlsx = "yes"\n')
    proc = _run(tmp_path, "validate", EXAMPLE, "-m", MAPPING, "--no-rep-check")
    assert proc.returncode == 2
    said = proc.stderr.strip()
    assert "concurency: unknown key (did you mean 'concurrency'?)" in said
    assert "rate_per_min: expected a number, got 'fast'" in said
    assert "report_xlsx: expected true or false, got 'yes'" in said
    assert "float" not in said and "Traceback" not in said and len(said.splitlines()) == 1


def test_a_watch_routes_mapping_is_read_from_the_config_files_folder(tmp_path: Path) -> None:
    home = tmp_path / "etc"
    (home / "maps").mkdir(parents=True)
    (home / "maps" / "m.yaml").write_text(MAPPING.read_text())
    (home / "bulk_sync.toml").write_text('[[watch.routes]]\nmatch = "*.csv"\nmapping = "maps/m.yaml"\n')
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli_run(
        cli_argv("watch", inbox, "--config", home / "bulk_sync.toml", "--once"),
        capture_output=True, text=True, env=cli_env(), cwd=elsewhere, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # an empty inbox: nothing filed, the route loaded
    assert "does not exist" not in proc.stderr


def _cli(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return _run(tmp_path, *args, timeout=60)


@pytest.mark.slow
def test_a_mistyped_command_or_flag_gets_did_you_mean(tmp_path: Path) -> None:
    typo = _cli(tmp_path, "rnu", EXAMPLE)
    assert typo.returncode == 2 and "(did you mean 'run'?)" in typo.stderr
    flag = _cli(tmp_path, "validate", EXAMPLE, "--mapingg", MAPPING)
    assert flag.returncode == 2
    assert "bulk-sync validate: error: unrecognized arguments: --mapingg" in flag.stderr
    assert "(did you mean --mapping?)" in flag.stderr
    assert flag.stderr.startswith("usage: bulk-sync validate")  # the command's usage, not the top's
    choice = _cli(tmp_path, "validate", EXAMPLE, "-m", MAPPING, "--log-level", "warn")
    assert "(did you mean 'warning'?)" in choice.stderr
    nothing_near = _cli(tmp_path, "validate", EXAMPLE, "--zzzz")
    assert "did you mean" not in nothing_near.stderr


def test_version_short_and_long(tmp_path: Path) -> None:
    from bulk_sync import __version__

    for flag in ("-V", "--version"):
        proc = _cli(tmp_path, flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"bulk-sync {__version__}"


@pytest.mark.slow
def test_every_command_has_an_example_in_its_help(tmp_path: Path) -> None:
    top = _cli(tmp_path, "--help")
    assert "examples:\n  bulk-sync run" in top.stdout
    commands = [
        "run",
        "retry",
        "validate",
        "watch",
        "init-mapping",
        "sandbox",
        "delete",
        "serve",
        "completion",
    ]
    for name in commands:
        text = _cli(tmp_path, name, "--help").stdout
        assert "example" in text, name
        examples = text[text.index("example") :]
        assert re.search(r"(?m)^\s+.*bulk-sync " + re.escape(name) + r"\b", examples), name


def test_shell_completion_completes_commands_and_flags(tmp_path: Path) -> None:
    script = tmp_path / "bulk-sync.bash"
    proc = _cli(tmp_path, "completion", "bash")
    assert proc.returncode == 0
    script.write_text(proc.stdout)
    probe = (
        f"source {script}; "
        'COMP_WORDS=(bulk-sync ru); COMP_CWORD=1; _shtab_bulk_sync; echo "${COMPREPLY[@]}"; '
        'COMP_WORDS=(bulk-sync validate --heart); COMP_CWORD=2; _shtab_bulk_sync; echo "${COMPREPLY[@]}"'
    )
    out = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=30
    ).stdout.splitlines()
    assert out == ["run", "--heartbeat"]
    for shell in ("zsh", "fish"):
        text = _cli(tmp_path, "completion", shell).stdout
        assert "init-mapping" in text and "--mapping" in text, shell


def test_verbose_prints_the_log_on_stderr_without_the_token(tmp_path: Path, siro) -> None:  # type: ignore[no-untyped-def]
    from helpers import TOKEN

    proc = _cli(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state", "-v")
    assert "INFO bulk_sync.cli: bulk-sync 0.1.0 run started" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
    quiet = _cli(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state")
    assert "INFO bulk_sync" not in quiet.stderr


@pytest.mark.slow
def test_the_resend_hint_fits_what_happened(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    failing = sandbox(Faults(error_5xx=1.0))
    common = [EXAMPLE, "-m", MAPPING, "--circuit-breaker", "2", "--retry-backoff", "0"]
    with_state = _run(tmp_path, "run", *common, "--base-url", failing.base_url, "--state", tmp_path / "s.db")
    assert with_state.returncode == 3
    assert "run the same command again (the state skips what SIRO acknowledged)" in with_state.stdout
    no_state = _run(tmp_path, "run", *common, "--base-url", failing.base_url, "--no-state")
    assert "run the same command again" not in no_state.stdout
    assert "this run kept no state: the same command would send every row again" in no_state.stdout
    assert "bulk-sync retry " in no_state.stdout
    refused = cli_run(
        cli_argv("run", *common, "--base-url", sandbox().base_url, "--no-preflight", "--no-state"),
        capture_output=True, text=True, env=cli_env("not-the-token"), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 3, refused.stderr
    assert "SIRO refused the token; fix it (see above), then run the same command again" in refused.stdout
    assert "they need no fixing" not in refused.stdout


@pytest.mark.slow
def test_retry_takes_the_mapping_from_the_runs_summary(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    failing = sandbox(Faults(error_5xx=1.0))
    report = tmp_path / "first.csv"
    first = _run(
        tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", failing.base_url, "--no-state",
        "--circuit-breaker", "2", "--retry-backoff", "0", "--report", report,
    )  # fmt: skip
    assert first.returncode == 3 and report.with_name("first-summary.json").exists()
    siro = sandbox()
    again = _run(
        tmp_path, "retry", report, "--base-url", siro.base_url, "--no-state", "--report", tmp_path / "r2.csv"
    )
    assert again.returncode == 1, again.stderr  # its 5 invalid rows are still invalid
    assert f"mapping: {MAPPING} (the one the report's run used, per its summary JSON)" in again.stdout
    assert len(siro.state.records) == 55
    report.with_name("first-summary.json").unlink()
    lost = _run(tmp_path, "retry", report, "--base-url", siro.base_url, "--no-state")
    assert lost.returncode == 2 and "--mapping is required" in lost.stderr


@pytest.mark.slow
def test_retry_dry_run_checks_what_it_would_resend_and_sends_nothing(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    failing = sandbox(Faults(error_5xx=1.0))
    report = tmp_path / "first.csv"
    _run(
        tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", failing.base_url, "--no-state",
        "--circuit-breaker", "2", "--retry-backoff", "0", "--report", report,
    )  # fmt: skip
    siro = sandbox()
    dry = _run(
        tmp_path, "retry", report, "--dry-run", "--base-url", siro.base_url, "--report", tmp_path / "d.csv"
    )
    assert dry.returncode == 1, dry.stderr
    assert len(siro.state.records) == 0
    assert "checked 60 rows" in dry.stdout and "valid             55" in dry.stdout


@pytest.mark.slow
def test_watch_once_says_why_a_file_went_to_failed(tmp_path: Path) -> None:
    from helpers import TOKEN

    from bulk_sync.sandbox import SandboxServer

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "appointments.csv").write_bytes(EXAMPLE.read_bytes())  # 5 invalid rows
    old = time.time() - 60
    os.utime(inbox / "appointments.csv", (old, old))
    with SandboxServer(TOKEN) as siro:
        proc = cli_run(
            cli_argv("watch", inbox, "--once", "-m", MAPPING, "--base-url", siro.base_url, "--settle", "1"),
            capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    why = next((inbox / "failed").glob("appointments-*-error.txt")).read_text()
    fixes = next((inbox / "failed").glob("appointments-*-report-errors.csv")).name
    expected = "appointments.csv: 5 of 60 rows did not sync; 5 rows to fix (invalid or rejected): "
    expected += f"fix them in {fixes}"
    assert why.startswith(expected), why
    assert expected in proc.stdout


def _on_a_terminal(tmp_path: Path, *args: str | Path, env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; what it printed."""
    import pty

    out = b""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, as a person runs it in a terminal
        os.chdir(tmp_path)
        os.execvpe(sys.executable, cli_argv(*args), env)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal closed: the CLI ended
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


@pytest.mark.slow
def test_colour_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env().items() if k not in ("NO_COLOR", "TERM")}
    args = ("validate", EXAMPLE, "-m", MAPPING, "--no-rep-check")
    coloured = _on_a_terminal(tmp_path, *args, env={**env, "TERM": "xterm"})
    assert "\x1b[32mvalid     \x1b[0m" in coloured and "\x1b[31minvalid   \x1b[0m" in coloured
    plain = _on_a_terminal(tmp_path, *args, env={**env, "TERM": "xterm", "NO_COLOR": "1"})
    assert "valid" in plain and "\x1b[3" not in plain
    piped = _run(tmp_path, *args)  # not a terminal: no colour either
    assert "\x1b[" not in piped.stdout + piped.stderr
    error = _on_a_terminal(
        tmp_path, "validate", tmp_path / "missing.csv", "-m", MAPPING, env={**env, "TERM": "xterm"}
    )
    assert "\x1b[31merror:\x1b[0m" in error


def test_show_moves_no_row_out_of_the_predicted_effect(tmp_path: Path, siro) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state.db"
    first = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--state", state)
    assert first.returncode == 1
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = tmp_path / "changed.csv"  # a row changed, one new row at the end
    edited = [ln.replace(",In-home consultation", ",In-home visit", 1) for ln in lines[1:4]]
    new = lines[1].replace("APT-24001", "APT-NEW-1", 1)
    changed.write_text("".join([lines[0], *edited, *lines[4:], new]), encoding="utf-8")
    common = [changed, "-m", MAPPING, "--base-url", siro.base_url, "--state", state, "--no-rep-check"]
    plain = _run(tmp_path, "validate", *common, "--report", tmp_path / "a.csv")
    shown = _run(tmp_path, "validate", *common, "--show", "3", "--report", tmp_path / "b.csv")
    predicted = [ln for ln in plain.stdout.splitlines() if ln.startswith("predicted effect")]
    counts = [int(n) for n in re.findall(r"(\d+) (?:new|changed|unchanged)", predicted[0])]
    assert counts[0] == 1 and counts[1] >= 1 and sum(counts) == 56, predicted  # every valid row, once
    assert predicted == [ln for ln in shown.stdout.splitlines() if ln.startswith("predicted effect")]
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert len(re.findall(r'(?m)^\{\n  "externalId"', shown.stdout)) == 2  # the rows a run would send


def test_a_wrong_delimiter_or_mapping_is_a_short_error_with_a_hint_on_its_own_line(tmp_path: Path) -> None:
    wrong_delimiter = _run(tmp_path, "validate", EXAMPLE, "-m", MAPPING, "--delimiter", ";", "--no-rep-check")
    assert wrong_delimiter.returncode == 2
    lines = wrong_delimiter.stderr.strip().splitlines()
    assert lines[-1] == (
        "hint: the header reads as 2 column(s) holding commas: the file's delimiter is probably the comma "
        "(pass --delimiter ',')"
    )
    assert len(lines[-2]) < 500 and "the file's columns the mapping does not read" in lines[-2]
    other = ROOT / "mappings" / "hubspot_calls_export.yaml"
    wrong_mapping = _run(tmp_path, "validate", EXAMPLE, "-m", other, "--no-rep-check")
    assert wrong_mapping.returncode == 2
    last = wrong_mapping.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "hint: 8 of the 12 columns the mapping reads are missing: is it the mapping for this"
    )
    assert "and 37 more" in wrong_mapping.stderr and len(wrong_mapping.stderr.splitlines()[-2]) < 900
    assert "and 37 more from mapping" in wrong_delimiter.stderr


@pytest.mark.parametrize(
    ("command", "groups", "loose"),
    [
        ("run", ["SIRO and its token", "pace, batches and retries", "state", "mirror deletes",
                 "scheduled job"], {"-h", "--dry-run"}),
        ("retry", ["SIRO and its token", "pace, batches and retries", "state"], {"-h", "--dry-run"}),
        ("validate", ["SIRO, for the rep check (nothing is sent)", "state", "mirror deletes"],
         {"-h", "--show", "--warnings", "--max-body-bytes"}),
    ],
)  # fmt: skip
def test_the_flags_of_help_stand_in_named_groups(command: str, groups: list[str], loose: set[str]) -> None:
    from bulk_sync.cli.args import build_parser, subparsers

    text = subparsers(build_parser())[command].format_help()
    for title in ["input", "outputs", "progress and logging", "config file", *groups]:
        assert f"\n{title}:\n" in text, title
    options = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    assert {line.split()[0].rstrip(",") for line in options.splitlines() if line.startswith("  -")} == loose
