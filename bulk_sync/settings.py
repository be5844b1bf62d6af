"""Settings: where to send, how fast, how to retry, for one run. Frozen once built.

The CLI turns flags into a :class:`RunSettings`; nothing below the CLI reads flags, the
environment or files for configuration. The token lives here as a ``SecretStr`` so that it is
never printed by accident (``repr`` shows ``**********``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .errors import UsageError

PRODUCTION_BASE_URL = "https://functions.siro.ai/api-externalApi"
TOKEN_ENV = "SIRO_API_TOKEN"
SINGLE_PATH = "/v1/integrations/sync/engagements"
BATCH_PATH = "/v1/integrations/sync/batch/engagements"
# a mapping's `resource:` -> its sync paths: one record, a batch
SYNC_PATHS = {
    "engagements": (SINGLE_PATH, BATCH_PATH),
    "opportunities": ("/v1/integrations/sync/opportunities", "/v1/integrations/sync/batch/opportunities"),
}
IDENTITY_PATH = "/v1/core/auth/caller-identity"
UNLIMITED_BODY = 1 << 62  # max_body_bytes of a dry run not asked to check record sizes


class RetryPolicy(BaseModel):
    """Retry on named conditions only, bounded by elapsed time per request (and, when asked, by a
    count of attempts): a request keeps its whole time budget through a storm of 5xx answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_attempts: int | None = Field(None, ge=1)  # None: no count, only the time budget
    max_elapsed: float = Field(300.0, gt=0)  # seconds from a row's first attempt
    backoff_base: float = Field(0.5, ge=0)  # first wait; doubles each attempt
    backoff_cap: float = Field(30.0, ge=0)
    retry_after_cap: float = Field(300.0, ge=0)  # never wait longer than this for a Retry-After


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    connect: float = Field(10.0, gt=0)
    read: float = Field(60.0, gt=0)
    total: float = Field(120.0, gt=0)  # one request, start to last byte


class ReadSettings(BaseModel):
    """What the reader thread needs from a run's settings: no token, nothing of the network."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str  # names the state's target (which SIRO the remembered records went to)
    resource: str = "engagements"  # ... and what they are
    identity: str | None = None  # names the target instead of base_url (a kept sandbox's folder)
    max_body_bytes: int
    dry_run: bool
    state_path: Path | None
    full: bool
    limit: int | None
    workers: int | None = None  # a dry run's worker processes (see RunSettings.workers)


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str = PRODUCTION_BASE_URL
    resource: str = "engagements"  # the mapping's `resource:` (SYNC_PATHS, the state's target)
    # names the state's target instead of base_url: a kept sandbox's "sandbox:<folder>", whose port
    # changes from run to run while what it holds does not
    identity: str | None = None
    token: SecretStr
    token_source: str = "the configured token"  # where the token came from (never the token itself)
    concurrency: int = Field(8, ge=1, le=512)
    batch: bool = True  # use the batch endpoint
    batch_size: int = Field(100, ge=1, le=10_000)  # fixed, or where a learned size starts
    batch_auto: bool = False  # learn the size (--batch-size auto): see upload/sizing.py
    max_batch_size: int = Field(1000, ge=1, le=10_000)  # learning never goes past this
    max_body_bytes: int = Field(5_000_000, ge=1_000)  # well under the platform's 10 MB request cap
    rate_per_min: float | None = Field(1000.0, gt=0)  # None: no client-side limit
    breaker: int | None = Field(30, ge=1)  # consecutive failed requests that stop the run
    retry: RetryPolicy = RetryPolicy()
    timeouts: Timeouts = Timeouts()
    ca_bundle: Path | None = None  # CA certificates (PEM) to trust instead of the system's
    dry_run: bool = False
    state_path: Path | None = None  # None: no state (every record is sent, nothing remembered)
    full: bool = False  # send every record, even those unchanged since the last sync
    limit: int | None = Field(None, ge=0)  # read at most this many data rows per run
    # worker processes a dry run maps its chunks in (0: none, one process); None: one for a large
    # file on a Linux machine with two cores or more (the CLI: $BULK_SYNC_WORKERS)
    workers: int | None = Field(None, ge=0, le=64)

    @property
    def reading(self) -> ReadSettings:
        """The part the reader thread sees (the token stays with the sending stages)."""
        return ReadSettings(**self.model_dump(include=set(ReadSettings.model_fields)))


def read_token(token_file: str | None, *, env: Mapping[str, str], env_name: str = TOKEN_ENV) -> SecretStr:
    """The API token from ``--token-file`` or the environment variable ``env_name`` in ``env`` (the
    caller's environment: the CLI passes ``os.environ``; default ``$SIRO_API_TOKEN``, a config
    profile may name another); never from a flag value. A token of a
    shape no HTTP header can carry (a line break inside, two lines, a space, a control character)
    is a UsageError saying where it came from and what is wrong, never the token itself."""
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"the token file {token_file} is not text (not UTF-8): it must hold the token alone, "
                "on one line"
            ) from exc
        if not text:
            raise UsageError(f"the token file {token_file} is empty: it must hold the token, on one line")
        if len(lines := text.splitlines()) > 1:
            raise UsageError(
                f"the token file {token_file} has {len(lines)} lines: it must hold the token alone, "
                "on one line"
            )
        return SecretStr(_one_token(text, f"the token in {token_file}"))
    value = env.get(env_name, "").strip()
    if not value:
        raise UsageError(
            f"no API token: set the environment variable {env_name} or pass --token-file PATH "
            "(an admin creates tokens in SIRO: Person icon -> API Tokens)"
        )
    return SecretStr(_one_token(value, f"${env_name}"))


def _one_token(token: str, where: str) -> str:
    for i, ch in enumerate(token, start=1):
        if ch in "\r\n":
            what = "a line break"
        elif ch.isspace():
            what = "a space"
        elif not ch.isprintable():
            what = "a control character"
        elif not ch.isascii():
            what = "a non-ASCII character"
        else:
            continue
        raise UsageError(
            f"{where} holds {what} (character {i} of {len(token)}): a token is one word of printable "
            "ASCII; copy it again from SIRO (Person icon -> API Tokens)"
        )
    return token


def token_file_warning(token_file: str) -> str | None:
    """A warning when every user of this machine may read the token file (None when not, or when the
    file cannot be looked at: reading it will say why)."""
    try:
        mode = Path(token_file).stat().st_mode
    except OSError:
        return None
    if os.name != "posix" or not mode & 0o004:
        return None
    return (
        f"warning: the token file {token_file} can be read by every user of this machine "
        f"(mode {mode & 0o777:o}): chmod 600 {token_file}"
    )
