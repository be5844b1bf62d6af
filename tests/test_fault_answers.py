"""Issue 33: a server that answers, but not as SIRO (a proxy's maintenance page, a captive portal, a
wrong path), never makes a row `synced` or puts it in the state.

A small threaded fault server on 127.0.0.1 answers with exact bytes: a 200 HTML page, a 200 cut-off
JSON body, `{"data": null}`, half the results, results naming other externalIds, a redirect and a
404 at the pre-flight. Each case runs the real CLI against it, then "SIRO comes back": the same
server forwards to the sandbox, and a rerun with the same state sends every row not acknowledged.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN, cli_argv, cli_env, cli_run

from bulk_sync.report import read_report
from bulk_sync.sandbox import SandboxServer

API = "/api-externalApi"
IDENTITY = b'{"data": {"organizationId": "org_1", "type": "organization-api-token", "name": "t"}}'
HTML = b"<html><head><title>Maintenance</title></head><body>Welcome! We will be back soon.</body></html>"

Answer = tuple[int, dict[str, str], bytes]


def _results(sent: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {
            "id": f"eng_{s['externalId']}",
            "externalId": s["externalId"],
            "engagementType": "x",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "organizationId": "org_1",
        }
        for s in sent
    ]


def _json(results: object) -> Answer:
    return 200, {"Content-Type": "application/json"}, json.dumps({"data": results}).encode()


# what the fault server answers to a sync (the records sent, as a list) -> (status, headers, body)
SYNC_FAULTS: dict[str, Callable[[list[dict[str, object]]], Answer]] = {
    "200-html": lambda sent: (200, {"Content-Type": "text/html"}, HTML),
    "200-cut-off-json": lambda sent: (200, {}, _json(_results(sent))[2][:70]),
    "data-null": lambda sent: (200, {"Content-Type": "application/json"}, b'{"data": null}'),
    "half-the-results": lambda sent: _json(_results(sent)[: len(sent) // 2]),
    "foreign-external-ids": lambda sent: _json(
        [{**r, "externalId": f"OTHER-{r['externalId']}"} for r in _results(sent)]
    ),
}


class FaultServer:
    """Answers the pre-flight with ``identity`` and a sync with ``sync`` (exact bytes), or, once
    ``upstream`` is set, forwards every request to it byte for byte (SIRO is back)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.identity: Answer = (200, {"Content-Type": "application/json"}, IDENTITY)
        self.sync: Callable[[list[dict[str, object]]], Answer] = lambda sent: _json(_results(sent))
        self.upstream: SandboxServer | None = None
        self.acked: set[str] = set()  # externalIds a sync answer of this server named with an id
        self.syncs = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.handle(self)

            def do_PUT(self) -> None:
                owner.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.root = f"{scheme}://127.0.0.1:{self.httpd.server_port}"
        self.url = self.root + API
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if self.upstream is not None:
            answer = self._forward(h, body)
        elif not h.path.startswith(API + "/"):
            answer = (404, {"Content-Type": "text/html"}, b"<html><body>Not Found</body></html>")
        elif h.path.endswith("/caller-identity"):
            answer = self.identity
        elif h.command != "PUT":
            answer = (404, {"Content-Type": "application/json"}, b'{"error": "Not found"}')
        else:
            self.syncs += 1
            sent = json.loads(body)
            answer = self.sync(sent if isinstance(sent, list) else [sent])
            self._note_acks(answer[2])
        status, headers, content = answer
        h.send_response_only(status)  # the Date header is the answer's own (a fault may set it)
        for k, v in {"Date": h.date_time_string(), **headers, "Content-Length": str(len(content))}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(content)

    def _note_acks(self, content: bytes) -> None:
        try:
            data = json.loads(content)["data"]
        except (ValueError, KeyError, TypeError):
            return
        for r in data if isinstance(data, list) else [data]:
            if isinstance(r, dict) and r.get("id"):
                self.acked.add(str(r["externalId"]))

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> Answer:
        assert self.upstream is not None
        up = self.upstream.base_url.rstrip("/")
        host_port = up.split("://", 1)[1].split("/", 1)[0]
        conn = http.client.HTTPConnection(host_port, timeout=30)
        path = h.path[len(API) :] if h.path.startswith(API) else h.path
        headers = {k: v for k, v in h.headers.items() if k.lower() in {"authorization", "content-type"}}
        conn.request(h.command, up.split(host_port, 1)[1] + path, body=body or None, headers=headers)
        resp = conn.getresponse()
        answer = (resp.status, {"Content-Type": resp.getheader("Content-Type") or ""}, resp.read())
        conn.close()
        return answer

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


def _run(
    tmp_path: Path, base_url: str, *flags: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    report = tmp_path / "report.csv"
    report.unlink(missing_ok=True)
    argv = cli_argv(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", base_url, "--state", tmp_path / "state.db",
        "--report", report, "--summary-json", tmp_path / "summary.json", "--log-file", tmp_path / "run.log",
        "--max-attempts", "2", "--retry-backoff", "0", "--no-rep-check", *flags,
    )  # fmt: skip
    proc = cli_run(argv, capture_output=True, text=True, env=cli_env(), timeout=120, cwd=tmp_path)
    return proc, read_report(report) if report.exists() else []


def _state_keys(tmp_path: Path) -> set[str]:
    db = tmp_path / "state.db"
    if not db.exists():
        return set()
    with sqlite3.connect(db) as con:
        return {k for (k,) in con.execute("SELECT key FROM records")}


@pytest.mark.slow
@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
@pytest.mark.parametrize("kind", list(SYNC_FAULTS))
def test_an_answer_that_is_not_sirOs_syncs_nothing_it_does_not_prove(
    tmp_path: Path, fault: FaultServer, kind: str, batch: bool
) -> None:
    fault.sync = SYNC_FAULTS[kind]
    # not paced as SIRO (1000 requests a minute): 55 requests one by one took 3.5 s of waiting a run
    flags = ("--rate-per-min", "0") if batch else ("--no-batch", "--rate-per-min", "0")
    proc, rows = _run(tmp_path, fault.url, *flags)
    assert "Traceback" not in proc.stderr
    valid = {r["external_id"] for r in rows if r["status"] not in ("invalid", "skipped")}
    synced = {r["external_id"] for r in rows if r["status"] == "synced"}
    failed = [r for r in rows if r["status"] == "failed"]
    assert fault.syncs > 0 and valid
    assert synced <= fault.acked  # no row synced that the answer did not acknowledge
    assert _state_keys(tmp_path) == synced  # and nothing else in the state
    stopped = {r["external_id"] for r in rows if r["status"] == "not_sent"}
    assert {r["external_id"] for r in failed} | stopped == valid - synced
    # rows failed (exit 1); or, one record a request, 30 failed requests in a row tripped the
    # circuit breaker (exit 3) and the rest were not sent
    assert proc.returncode == (3 if stopped else 1), proc.stderr
    assert failed and (not stopped or "30 requests in a row failed" in proc.stderr)
    for r in failed:  # the message quotes what came back
        assert "is not SIRO's acknowledgement" in r["message"], r
        assert r["http_status"] == "200" or "requests in a row failed" in r["message"]
        assert TOKEN not in r["message"]
    if kind == "200-html":
        assert synced == set() and "Welcome! We will be back soon." in failed[0]["message"]
    if kind == "half-the-results" and batch:
        assert synced and failed  # the acknowledged half synced; the rest was resent, then failed
    for out in ("report.csv", "summary.json", "run.log"):
        assert TOKEN not in (tmp_path / out).read_text(encoding="utf-8-sig")

    # SIRO is back (the proxy forwards to it): the rerun sends every row not acknowledged
    siro = SandboxServer(TOKEN).start()
    try:
        fault.upstream = siro
        proc2, rows2 = _run(tmp_path, fault.url, *flags)
        assert proc2.returncode in (0, 1), proc2.stderr
        received = set(siro.state.records)
        assert received == valid - synced
        assert {r["external_id"] for r in rows2 if r["status"] in ("synced", "unchanged")} == valid
        assert _state_keys(tmp_path) == valid
    finally:
        siro.stop()


def _preflight(
    tmp_path: Path, base_url: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    proc, rows = _run(tmp_path, base_url)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {r["status"] for r in rows} == {"not_sent"}
    assert _state_keys(tmp_path) == set()
    return proc, rows


def test_a_404_at_the_preflight_names_the_url_and_the_likely_one(tmp_path: Path, fault: FaultServer) -> None:
    proc, _ = _preflight(tmp_path, fault.root)  # the base URL without /api-externalApi
    line = proc.stderr.strip().splitlines()[-1]
    assert line == (
        f"error: not SIRO's API at this path: {fault.root} answered HTTP 404 to GET "
        f"/v1/core/auth/caller-identity: did you mean --base-url {fault.url}? Nothing was sent"
    )
    assert fault.syncs == 0


def test_a_redirect_at_the_preflight_is_refused_naming_where_it_goes(
    tmp_path: Path, fault: FaultServer
) -> None:
    fault.identity = (
        301,
        {"Location": "https://siro.example/api-externalApi/v1/core/auth/caller-identity?x=1"},
        b"",
    )
    proc, _ = _preflight(tmp_path, fault.url)
    assert "not SIRO's API at this path" in proc.stderr and "HTTP 301" in proc.stderr
    assert "it redirects to https://siro.example/api-externalApi/v1/core/auth/caller-identity)" in proc.stderr
    assert "x=1" not in proc.stderr
    assert fault.syncs == 0


@pytest.mark.parametrize(
    "body",
    [HTML, b"", b"[]", b"{}", b'{"data": null}', b'{"data": {"organizationId": "o"'],
    ids=["html", "empty", "list", "empty-object", "data-null", "cut-off"],
)
def test_a_preflight_answer_that_is_not_siros_identity_stops_the_run(
    tmp_path: Path, fault: FaultServer, body: bytes
) -> None:
    fault.identity = (200, {"Content-Type": "text/html"}, body)
    proc, _ = _preflight(tmp_path, fault.url)
    assert "error: this server is not SIRO:" in proc.stderr
    assert fault.syncs == 0
    # the same URL, once SIRO answers there, sends every row
    siro = SandboxServer(TOKEN).start()
    try:
        fault.upstream = siro
        proc2, rows2 = _run(tmp_path, fault.url)
        assert proc2.returncode == 1, proc2.stderr  # the example file has invalid rows
        valid = {r["external_id"] for r in rows2 if r["status"] not in ("invalid", "skipped")}
        assert valid and set(siro.state.records) == valid
    finally:
        siro.stop()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://bob:hunter2@127.0.0.1:9/api-externalApi", "holds a user name or password"),
        ("https://siro.example/api-externalApi?key=hunter2", "has a ?query or #fragment"),
        ("https://siro.example/api-externalApi#hunter2", "has a ?query or #fragment"),
        ("ftp://bob:hunter2@siro.example/x", "holds a user name or password"),
    ],
)
def test_credentials_or_a_query_in_the_base_url_are_refused_and_never_shown(
    tmp_path: Path, url: str, words: str
) -> None:
    proc, _ = _run(tmp_path, url)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    for text in (proc.stdout, proc.stderr, *(p.read_text() for p in tmp_path.iterdir() if p.is_file())):
        assert "hunter2" not in text


def _throttle_once(headers: dict[str, str]) -> Callable[[list[dict[str, object]]], Answer]:
    """A 429 with ``headers`` to the first sync request, then SIRO's answers."""
    calls = iter(range(1_000_000))

    def answer(sent: list[dict[str, object]]) -> Answer:
        if next(calls) == 0:
            return 429, {"Content-Type": "application/json", **headers}, b'{"error": "Too many requests"}'
        return _json(_results(sent))

    return answer


@pytest.mark.slow
def test_retry_after_as_an_http_date_is_read_against_the_servers_own_clock(
    tmp_path: Path, fault: FaultServer
) -> None:
    """A server clock 10 minutes ahead says "Retry-After: <its now + 2 s>": a 2 s wait, not 602 s
    (before, capped at 300 s, the run sat still for five minutes)."""
    ahead = time.time() + 600
    fault.sync = _throttle_once(
        {
            "Date": email.utils.formatdate(ahead, usegmt=True),
            "Retry-After": email.utils.formatdate(ahead + 2, usegmt=True),
        }
    )
    started = time.monotonic()
    proc, rows = _run(tmp_path, fault.url)
    assert time.monotonic() - started < 60
    assert proc.returncode == 1, proc.stderr  # the example file's invalid rows
    valid = {r["external_id"] for r in rows if r["status"] not in ("invalid", "skipped")}
    assert {r["external_id"] for r in rows if r["status"] == "synced"} == valid


def test_a_retry_after_past_the_retry_budget_says_so(tmp_path: Path, fault: FaultServer) -> None:
    fault.sync = _throttle_once({"Retry-After": "86400"})
    proc, rows = _run(tmp_path, fault.url)
    assert proc.returncode == 1
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(
        "SIRO asked to wait 86400 s, more than --retry-max-seconds allows (300 s left of 300 s)"
        in r["message"]
        for r in failed
    ), failed[0]
    assert fault.syncs == 1  # not retried in vain


# ----------------------------------------------------------------------------- certificates


@pytest.fixture
def tls_siro(tmp_path: Path) -> Iterator[tuple[FaultServer, Path]]:
    """A SIRO on https://127.0.0.1 whose certificate is signed by a CA of its own (as a company's
    TLS-inspecting proxy would be); yields it and the CA's certificate (PEM)."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime as dt
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    here = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(here, critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)
    server = FaultServer(tls=ctx)
    yield server, ca_pem
    server.stop()


def test_an_unknown_certificate_says_certificate_verify_failed_and_how_to_trust_it(
    tmp_path: Path, tls_siro: tuple[FaultServer, Path]
) -> None:
    server, _ = tls_siro
    proc, rows = _run(tmp_path, server.url)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot reach SIRO at {server.url}: certificate verify failed (")
    assert "--ca-bundle FILE" in line and "SSL_CERT_FILE" in line and "Traceback" not in proc.stderr
    assert {r["status"] for r in rows} == {"not_sent"} and server.syncs == 0


@pytest.mark.parametrize("how", ["--ca-bundle", "SSL_CERT_FILE"])
def test_a_ca_bundle_or_ssl_cert_file_trusts_it(
    tmp_path: Path, tls_siro: tuple[FaultServer, Path], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_siro
    if how == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        proc, rows = _run(tmp_path, server.url)
    else:
        proc, rows = _run(tmp_path, server.url, "--ca-bundle", str(ca))
    assert proc.returncode == 1, proc.stderr  # the example file's invalid rows
    valid = {r["external_id"] for r in rows if r["status"] not in ("invalid", "skipped")}
    assert valid and {r["external_id"] for r in rows if r["status"] == "synced"} == valid


def test_a_ca_bundle_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "not.pem").write_text("hello\n")
    for bundle, words in [
        (tmp_path / "missing.pem", "No such file"),
        (tmp_path / "not.pem", "no PEM certificate"),
    ]:
        proc, _ = _run(tmp_path, "https://127.0.0.1:9/api-externalApi", "--ca-bundle", str(bundle))
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --ca-bundle {bundle}: ") and words in lines[0]
