"""Where the login flow may type an account's credentials.

Lingma hands out the login URL, and the page may redirect anywhere, so the page's own address is checked
right before each field is typed. Allowed:

- https on Alibaba Cloud's own domains, aliyun.com and alibabacloud.com, and any host under them (the
  Lingma login starts on devops.aliyun.com or lingma.alibabacloud.com and signs in on account.*,
  signin.* or passport.* of the same domains). A parent domain only matches at a dot boundary, so
  evilaliyun.com and aliyun.com.example.net do not; customer-hosted content lives under aliyuncs.com,
  which is not on the list. alibaba.com is left out: its subdomains include sellers' storefronts.
- the exact origin (scheme, host and port) of lingma.dedicated_domain_url, an enterprise's own login;
- the exact origin of the simulator's login page, when the upstream is the simulator.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

LOGIN_DOMAINS = ("aliyun.com", "alibabacloud.com")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """scheme://host:port of a URL, lower-cased, the port always spelled out; "" when it has none."""
    try:
        parts = urlsplit(url.strip())
        host, port = (parts.hostname or "").rstrip("."), parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number, or an unbalanced [IPv6] bracket
        return ""
    if not host or port is None:
        return ""
    return f"{parts.scheme.lower()}://{host}:{port}"


def login_origins(dedicated_domain_url: str, simulator_http_port: int | None) -> frozenset[str]:
    """The origins allowed besides the Alibaba Cloud domains; simulator_http_port only for the simulator."""
    allowed = {origin(dedicated_domain_url)} if dedicated_domain_url else set()
    if simulator_http_port:
        allowed.add(f"http://127.0.0.1:{simulator_http_port}")
    return frozenset(allowed - {""})


def login_page_refusal(url: str, extra_origins: Collection[str] = ()) -> str:
    """Why the credentials must not be typed into the page at `url`; "" when they may.

    The reason names the page's scheme and host only: the URL's query carries the login's nonce."""
    page = origin(url)
    if page and page in extra_origins:
        return ""
    scheme, _, host_port = page.partition("://")
    host = host_port.rsplit(":", 1)[0]
    if scheme == "https" and host_port.endswith(":443") and _under_login_domain(host):
        return ""
    where = f"{scheme}://{host}" if page else "a page without a host"
    return f"refused to type the credentials into {where}: not a known Lingma or Alibaba Cloud login host"


def _under_login_domain(host: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in LOGIN_DOMAINS)
