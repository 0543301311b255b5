"""Which browser-borne requests may reach the proxy.

Browsers can reach localhost, so a web page the user visits could otherwise spend the account's quota
with a cross-site POST (text/plain needs no preflight), or read the status and debug pages once its
own host name resolves to 127.0.0.1 (DNS rebinding). Two checks stop both: the `Host` must be a name
this server answers to, and a request that a browser marks as coming from another site (`Origin`,
`Sec-Fetch-Site`) must come from an origin the user allowed. CLI tools and SDKs send neither header.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from ..config import is_loopback_host


def host_name(host_header: str) -> str:
    """The name part of a Host header: `[::1]:8787` → `::1`, `Example.com:80` → `example.com`."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host_header: str, server_host: str, allowed_hosts: Collection[str]) -> bool:
    """A loopback name, the configured server.host, or a name the user listed ("*" lists every name)."""
    if "*" in allowed_hosts:
        return True
    name = host_name(host_header)
    if not name:
        return False
    return is_loopback_host(name) or name == server_host.lower() or name in {h.lower() for h in allowed_hosts}


def normal_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, default ports dropped; "" for anything that is not one."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return ""
    try:
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def refusal(
    host_header: str, origin: str | None, fetch_site: str | None, server_host: str,
    allowed_hosts: Collection[str], cors_origins: Collection[str],
) -> str | None:  # fmt: skip
    """Why a request must be refused, or None when it may go on."""
    if not host_allowed(host_header, server_host, allowed_hosts):
        return (
            f"Host {host_name(host_header)!r} is not a name this proxy answers to; "
            "add it to server.allowed_hosts if it is yours."
        )
    if origin is not None:
        # Our own pages, whether served plainly or behind a TLS-terminating load balancer.
        own = {normal_origin(f"{scheme}://{host_header.strip()}") for scheme in ("http", "https")}
        sent = normal_origin(origin)
        if not sent or (sent not in own and sent not in cors_allowed(cors_origins)):
            return f"Origin {origin[:100]!r} may not use this proxy; add it to server.cors_origins if it is yours."
        return None
    if fetch_site == "cross-site":
        return "A cross-site browser request may not use this proxy."
    return None


def cors_allowed(cors_origins: Collection[str]) -> set[str]:
    return {normal_origin(origin) for origin in cors_origins} - {""}
