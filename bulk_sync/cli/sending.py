"""CLI, sending: flags -> where and how a run sends: the base URL checked (https://, or http:// to this
machine), the token read, the sandbox started with --sandbox, RunSettings.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from .. import logs
from ..errors import (
    UsageError,
)
from ..settings import (
    PRODUCTION_BASE_URL,
    TOKEN_ENV,
    RetryPolicy,
    RunSettings,
    Timeouts,
    read_token,
)

if TYPE_CHECKING:  # the emulator is imported only when --sandbox starts it
    from ..sandbox import SandboxServer

from .process import default_state
from .progress import log, say


def sending_settings(
    args: argparse.Namespace, redactor: logs.Redactor
) -> tuple[RunSettings, SandboxServer | None]:
    """Where to send and with which token (the sandbox started here with --sandbox; it is returned
    to be stopped), and how."""
    server: SandboxServer | None = None
    if args.sandbox and args.base_url:
        raise UsageError("--sandbox and --base-url exclude each other")
    if args.sandbox:
        try:
            token = read_token(args.token_file, env=os.environ, env_name=args.token_env)
        except UsageError:
            token = read_token(None, env={TOKEN_ENV: "sandbox-" + secrets.token_hex(16)})
        from ..sandbox import SandboxServer

        server = SandboxServer(token.get_secret_value()).start()
        base_url = server.base_url
        say(args, f"sandbox: SIRO emulator listening on {base_url} (records are discarded at exit)")
        if args.rate_per_min:
            say(
                args,
                f"sandbox: paced at {args.rate_per_min:g} requests/min as SIRO; "
                "--rate-per-min 0 for full speed against the sandbox",
            )
    else:
        base_url = check_base_url(args.base_url or PRODUCTION_BASE_URL, args.allow_insecure_http)
        token = read_token(args.token_file, env=os.environ, env_name=args.token_env)
    redactor.secrets.append(token.get_secret_value())
    settings = _delivery_settings(args, base_url, token)
    log.info("sending to %s (batch %s, concurrency %d)", base_url, settings.batch, settings.concurrency)
    return settings, server


def _delivery_settings(args: argparse.Namespace, base_url: str, token: SecretStr) -> RunSettings:
    if args.no_state:
        state = None
    elif args.state:
        state = Path(args.state)
    else:  # a sandbox forgets everything at exit: remembering would wrongly skip rows next time
        state = None if args.sandbox else default_state()
    return RunSettings(
        base_url=base_url,
        token=token,
        token_source=f"the file {args.token_file}" if args.token_file else f"${args.token_env}",
        concurrency=args.concurrency,
        limit=args.limit,
        batch=not args.no_batch,
        batch_size=100 if args.batch_size == "auto" else args.batch_size,
        batch_auto=args.batch_size == "auto",
        max_batch_size=args.max_batch_size,
        max_body_bytes=args.max_body_bytes,
        rate_per_min=args.rate_per_min or None,
        breaker=args.circuit_breaker or None,
        state_path=state,
        full=args.full,
        retry=RetryPolicy(
            max_attempts=args.max_attempts,
            max_elapsed=args.retry_max_seconds,
            backoff_base=args.retry_backoff,
        ),
        timeouts=Timeouts(connect=args.connect_timeout, read=args.read_timeout, total=args.request_timeout),
        ca_bundle=ca_bundle(args),
    )


def ca_bundle(args: argparse.Namespace) -> Path | None:
    """--ca-bundle, checked (readable, CA certificates in PEM) before anything is sent."""
    path = getattr(args, "ca_bundle", None)
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
