"""Who may use the web bridge: the page's Origin, and the token when auth is on.

*Origin.* A browser sends ``Origin`` with every WebSocket handshake, and any page the user has
open may try to open a socket to this server (cross-site WebSocket hijacking: the browser does not
apply the same-origin policy to WebSockets). So a handshake is accepted only from one listed in
``GENRE_HTTP_ORIGINS`` (``*``: any), or from the page's own origin (``scheme://`` plus the
``Host`` it was asked for) when that host is an IP address or ``localhost``. A page under a DNS
name must be listed: its own origin alone is what a DNS-rebinding page (a hostile name resolved
to this server) would present too. A handshake without ``Origin`` did not come from a browser
page, which is what the check is about, so it passes to the token check.

*Token.* The same grants, messages and ``genre_auth_failures_total`` as the gRPC interceptor
(``server.auth``): an ``Authorization: Bearer`` header (scripts), or, as browsers cannot set
headers on a WebSocket, a ``token`` in the first frame. Tokens are never logged, and never read
from the URL, where proxies and access logs would keep them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import grpc

from server.auth import BearerTokenInterceptor

ANY_ORIGIN = "*"


def normal_origin(origin: str) -> str:
    """``HTTPS://Example.org/`` -> ``https://example.org``: how browsers send it."""
    return origin.strip().rstrip("/").lower()


def origin_allowed(
    origin: str | None, host: str | None, scheme: str, allowed: tuple[str, ...]
) -> bool:
    if origin is None:
        return True
    given = normal_origin(origin)
    if host and given == normal_origin(f"{scheme}://{host}") and _rebinding_proof(host):
        return True
    listed = {normal_origin(entry) for entry in allowed}
    return ANY_ORIGIN in listed or given in listed


def _rebinding_proof(host: str) -> bool:
    """A ``Host`` no hostile DNS name can present: an IP address, or localhost."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_refusal(origin: str, allowed: tuple[str, ...]) -> str:
    listed = ", ".join(allowed) or "none"
    return (
        f"Origin: {origin!r} may not open this WebSocket (allowed: GENRE_HTTP_ORIGINS: {listed}; "
        "and the page's own origin when its host is an IP address or localhost)"
    )


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The ``Authorization`` header as sent, or None when the request has none."""
    return headers.get("Authorization")


def refuse(
    auth: BearerTokenInterceptor | None, header: str | None, method: str
) -> tuple[grpc.StatusCode, str] | None:
    """None when the call may go on (auth off, or a token granted ``method``)."""
    if auth is None:
        return None
    return auth.check(header, method)


HTTP_STATUS = {grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}
