"""Job, targets: where a job sends. :class:`Siro` (the real API: a base URL, checked, and a token)
or :class:`Sandbox` (the SIRO emulator, started for the job and stopped after it), and how it
sends (:class:`Delivery`). Nothing here reads flags or the environment: the caller hands in the
token (the CLI reads it from ``$SIRO_API_TOKEN`` or ``--token-file``).
"""

from __future__ import annotations

import ipaddress
import secrets
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from ..errors import UsageError
from ..lockfile import LockFile
from ..settings import PRODUCTION_BASE_URL, TOKEN_ENV, RetryPolicy, RunSettings, Timeouts

if TYPE_CHECKING:  # the emulator is imported only when a job starts it
    from ..sandbox import SandboxServer

from .events import Events


@dataclass(frozen=True)
class Siro:
    """SIRO's External API: ``token`` (a str or a pydantic ``SecretStr``; never printed), the base
    URL (https://, or http:// to this machine; ``allow_insecure_http`` for a trusted network), and
    ``ca_bundle``: CA certificates (PEM) to trust instead of the system's."""

    token: SecretStr | str | None = field(default=None, repr=False)  # None: a dry run's, no rep check
    base_url: str = PRODUCTION_BASE_URL
    allow_insecure_http: bool = False
    ca_bundle: Path | str | None = None
    token_source: str = "the configured token"  # where the token came from, for messages

    def secret(self) -> SecretStr:
        if self.token is None:
            raise UsageError("no API token: Siro(token=...) sends nothing without one")
        return self.token if isinstance(self.token, SecretStr) else SecretStr(self.token)


@dataclass(frozen=True)
class Sandbox:
    """The SIRO emulator on 127.0.0.1, started for the job and stopped after it. ``token``: the one
    it accepts (a random one by default). ``keep``: a folder where it keeps its records between jobs
    (``sandbox.json``), and which names it in the state whatever its port, so that a rehearsal finds
    what the last one sent (unchanged rows skipped, the drift hold, the mirror); None: its records
    are discarded at the end of the job."""

    token: SecretStr | str | None = field(default=None, repr=False)
    token_source: str = "the sandbox's token"
    keep: Path | str | None = None

    @property
    def identity(self) -> str | None:
        """The state's name for a kept sandbox (None: not kept, named by its URL)."""
        return None if self.keep is None else f"sandbox:{Path(self.keep).resolve()}"


Target = Siro | Sandbox


@dataclass(frozen=True)
class Delivery:
    """How a job sends: concurrency, batches (``batch_size="auto"`` learns the size, starting at
    100), the client-side pace (``rate_per_min=None``: none), the circuit breaker, retries,
    timeouts, the largest request body, and the pre-flight call before the first row."""

    concurrency: int = 8
    batch: bool = True
    batch_size: int | Literal["auto"] = "auto"
    max_batch_size: int = 1000
    max_body_bytes: int = 5_000_000
    rate_per_min: float | None = 1000.0
    breaker: int | None = 30
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    preflight: bool = True


@dataclass
class Connection:
    """A target made ready: its base URL and token (the sandbox started), to be closed after the job."""

    base_url: str
    token: SecretStr
    token_source: str
    ca_bundle: Path | None
    sandbox: SandboxServer | None = None
    identity: str | None = None  # the state's name for the target, when not its URL
    held: LockFile | None = None  # a kept sandbox's folder, held while it runs

    def close(self) -> None:
        try:
            if self.sandbox is not None:
                from ..sandbox import KeptError

                sandbox, self.sandbox = self.sandbox, None
                try:
                    sandbox.stop()  # a kept sandbox writes its records
                except KeptError as exc:
                    raise UsageError(str(exc)) from None
        finally:
            if self.held is not None:
                self.held.release()
                self.held = None


def connect(target: Target, events: Events, rate_per_min: float | None) -> Connection:
    """The target made ready: the base URL checked, or the sandbox started."""
    if isinstance(target, Sandbox):
        token = (
            SecretStr("sandbox-" + secrets.token_hex(16))
            if target.token is None
            else target.token
            if isinstance(target.token, SecretStr)
            else SecretStr(target.token)
        )
        from ..sandbox import KeptError, SandboxServer

        held, keep = _kept(target)
        try:
            server = SandboxServer(token.get_secret_value(), keep=keep).start()
        except KeptError as exc:
            if held is not None:
                held.release()
            raise UsageError(str(exc)) from None
        events.info(
            f"sandbox: SIRO emulator listening on {server.base_url} "
            + ("(records are discarded at exit)" if keep is None else f"(its records kept in {keep})")
        )
        if rate_per_min:
            events.info(
                f"sandbox: paced at {rate_per_min:g} requests/min as SIRO; "
                "--rate-per-min 0 for full speed against the sandbox"
            )
        return Connection(server.base_url, token, target.token_source, None, server, target.identity, held)
    base_url = check_base_url(target.base_url, target.allow_insecure_http)
    return Connection(base_url, target.secret(), target.token_source, ca_bundle(target.ca_bundle), None)


def _kept(target: Sandbox) -> tuple[LockFile | None, Path | None]:
    """A kept sandbox's folder, held (one job at a time keeps its records there), and its file."""
    if target.keep is None:
        return None, None
    folder = Path(target.keep)
    lock = LockFile(folder / "sandbox.lock")
    try:
        holder = lock.acquire()
    except OSError as exc:
        raise UsageError(f"the sandbox's folder {folder} cannot be used: {exc.strerror or exc}") from None
    if holder is not None:
        raise UsageError(f"the sandbox's folder {folder} is in use by another run ({holder}): let it finish")
    return lock, folder / "sandbox.json"


def run_settings(
    conn: Connection, delivery: Delivery, state: Path | None, *, full: bool, limit: int | None
) -> RunSettings:
    """What the pipeline takes for a job that sends."""
    return RunSettings(
        base_url=conn.base_url,
        identity=conn.identity,
        token=conn.token,
        token_source=conn.token_source,
        concurrency=delivery.concurrency,
        limit=limit,
        batch=delivery.batch,
        batch_size=100 if delivery.batch_size == "auto" else delivery.batch_size,
        batch_auto=delivery.batch_size == "auto",
        max_batch_size=delivery.max_batch_size,
        max_body_bytes=delivery.max_body_bytes,
        rate_per_min=delivery.rate_per_min or None,
        breaker=delivery.breaker or None,
        state_path=state,
        full=full,
        retry=delivery.retry,
        timeouts=delivery.timeouts,
        ca_bundle=conn.ca_bundle,
    )


def ca_bundle(path: Path | str | None) -> Path | None:
    """A CA bundle, checked (readable, CA certificates in PEM) before anything is sent."""
    if not path:
        return None
    from ..upload.transport import tls_context  # aiohttp: only when there is a connection to make

    tls_context(Path(path))
    return Path(path)


def check_base_url(url: str, allow_insecure: bool = False) -> str:
    """The base URL, if it is one bulk_sync can send the token to: https://, or http:// to this
    machine (or anywhere with ``allow_insecure``), with no user, password or query in it. Raises
    UsageError saying what is wrong (showing the URL without its user, password or query)."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    said = _said(url)
    if "@" in parts.netloc:
        raise UsageError(
            f"--base-url {said!r} holds a user name or password (user:password@): remove it; SIRO "
            f"takes the API token alone, from ${TOKEN_ENV} or --token-file"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError(
            f"--base-url {said!r} has a ?query or #fragment: give the base URL alone "
            f"(e.g. {PRODUCTION_BASE_URL}); the API token goes in ${TOKEN_ENV} or --token-file"
        )
    if parts.scheme not in ("http", "https"):
        what = f"has the scheme {parts.scheme}://" if parts.scheme and parts.netloc else "has no https://"
        raise UsageError(
            f"--base-url {said!r} {what}; it must be an https:// URL (e.g. {PRODUCTION_BASE_URL})"
        )
    if not parts.hostname:
        raise UsageError(f"--base-url {said!r} names no host")
    if parts.scheme == "http" and not allow_insecure and not _loopback(parts.hostname):
        raise UsageError(
            f"--base-url {said!r} is http://: the API token would cross the network unencrypted. "
            "Use https://, or pass --allow-insecure-http if this network is trusted"
        )
    return url


def _said(url: str) -> str:
    """A base URL as a message may show it: without what may be a secret (a user and password, a
    query, a fragment)."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = url.rpartition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
