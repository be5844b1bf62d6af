"""Upload stage, transport: the bytes: bulk_sync's transport under httpx's API, on one aiohttp session
(proxies resolved once per URL), and the moment a request's body has left (for the pace).
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yarl

from ..errors import UsageError

Transport = (
    httpx.AsyncBaseTransport
)  # what tests inject (httpx.MockTransport), so others need not import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """A lean httpx transport on one aiohttp session; bodies are read whole (they are small JSON)."""

    def __init__(
        self, max_connections: int, *, report_sent: bool = False, ca_bundle: Path | None = None
    ) -> None:
        self._limit = max_connections
        self._tls = tls_context(ca_bundle)  # the system's trusted CAs (and SSL_CERT_FILE), or the bundle's
        self._report_sent = report_sent  # call request.extensions[SENT] when the request's headers leave
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, tuple[yarl.URL, str | None]] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _target(self, url: str) -> tuple[yarl.URL, str | None]:
        """The parsed URL and the proxy for it (HTTPS_PROXY/HTTP_PROXY/NO_PROXY), worked out once per URL.

        aiohttp's own ``trust_env`` would look both up in a thread for every request.
        """
        hit = self._urls.get(url)
        if hit is None:
            parsed = yarl.URL(url)
            proxy = None
            if not urllib.request.proxy_bypass(parsed.host or ""):
                proxy = urllib.request.getproxies().get(parsed.scheme)
            hit = self._urls[url] = (parsed, proxy)
        return hit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=300, ssl=self._tls
            )
            traces = []
            if (
                self._report_sent
            ):  # aiohttp says when it writes the body (with the headers): the request leaves
                trace = aiohttp.TraceConfig()
                trace.on_request_chunk_sent.append(_body_sent)
                traces.append(trace)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False, trace_configs=traces
            )
        t = request.extensions.get("timeout", {})
        key = (t.get("connect"), t.get("read"), t.get("total"))
        timeout = self._timeouts.get(key)
        if timeout is None:  # "total" is bulk_sync's own key: one whole request, first byte to last
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=key[2], sock_connect=key[0], sock_read=key[1]
            )
        url, proxy = self._target(str(request.url))
        try:
            async with self._session.request(
                request.method,
                url,
                headers=request.headers,
                data=request.content,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
                trace_request_ctx=request.extensions.get(SENT),
            ) as resp:
                content = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", "") or str(exc.certificate_error)
            raise httpx.ConnectError(
                f"{exc.host}:{exc.port}: certificate verify failed: {reason}", request=request
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(connect_reason(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(resp.status, headers=resp.raw_headers, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """How a server's certificate is checked: against the CA certificates in ``ca_bundle`` (PEM)
    instead of the system's, or (True) the system's, which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    may point elsewhere. Raises UsageError when the bundle cannot be read or holds no certificate."""
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError, ValueError) as exc:
        why = "it holds no PEM certificate"
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
            why = exc.strerror
        raise UsageError(f"--ca-bundle {ca_bundle}: {why} (give a file of CA certificates, PEM)") from exc


SENT = "bulk_sync.sent"  # a request extension: called with no arguments when the request leaves


async def _body_sent(session: object, ctx: Any, params: object) -> None:
    # aiohttp writes the bytes right after this returns, in the same step of its task
    if ctx.trace_request_ctx is not None:
        ctx.trace_request_ctx()


def connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, as the OS says it: "no-such.example:443: Name or service
    not known", "127.0.0.1:9: Connection refused"."""
    os_error = exc.os_error
    reason = ""
    if isinstance(os_error, socket.gaierror) or type(os_error).__name__ == "gaierror":
        reason = os_error.strerror or str(os_error)
    elif os_error.errno:
        reason = os.strerror(os_error.errno)
    return f"{exc.host}:{exc.port}: {reason or os_error.strerror or os_error}"
