"""Where the login flow may type credentials (lingma_proxy/login/login_hosts.py): a pure check of the page URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from lingma_proxy.login.login_hosts import login_origins, login_page_refusal, origin

SIMULATOR = login_origins("", 41234)


@pytest.mark.parametrize(
    "url",
    [
        "https://devops.aliyun.com/lingma/login?port=37510&state=2-abc&nonce=xyz",
        "https://account.aliyun.com/login/login.htm?oauth_callback=https%3A%2F%2Fevil.example",
        "https://signin.aliyun.com/1234567890.onaliyun.com/login.htm",
        "https://passport.aliyun.com/mini_login.htm",
        "https://lingma.alibabacloud.com/login",
        "https://account.alibabacloud.com/login/login.htm",
        "https://aliyun.com/",
        "https://SIGNIN.Aliyun.COM./login",  # case and a trailing dot do not matter
        "https://signin.aliyun.com:443/login",
        "https://user@signin.aliyun.com/login",  # userinfo does not change the host
    ],
)
def test_https_pages_on_alibaba_cloud_domains_are_allowed(url):
    assert login_page_refusal(url) == ""


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://signin.aliyun.com/login?nonce=n0nce-123", "http://signin.aliyun.com"),  # no TLS
        ("https://signin.aliyun.com:8443/login", "https://signin.aliyun.com"),  # another port
        ("https://evilaliyun.com/login", "https://evilaliyun.com"),  # no dot boundary
        ("https://aliyun.com.evil.example/login", "https://aliyun.com.evil.example"),
        ("https://signin.aliyun.com@evil.example/login", "https://evil.example"),  # userinfo trick
        ("https://mybucket.oss-cn-hangzhou.aliyuncs.com/login.html", "https://mybucket.oss-cn-hangzhou.aliyuncs.com"),
        ("https://shop1234.en.alibaba.com/login", "https://shop1234.en.alibaba.com"),  # sellers' storefronts
        ("https://login.taobao.com/member/login.jhtml", "https://login.taobao.com"),
        ("http://127.0.0.1:41234/lingma/login?nonce=abc", "http://127.0.0.1"),  # the simulator, not allowed here
    ],
)
def test_other_pages_are_refused_and_the_reason_names_the_host_without_the_query(url, named):
    reason = login_page_refusal(url)
    assert reason.startswith(f"refused to type the credentials into {named}:"), reason
    path, query = urlsplit(url).path, urlsplit(url).query
    assert path not in reason and (not query or query not in reason) and "?" not in reason


@pytest.mark.parametrize("url", ["", "about:blank", "data:text/html,<form>", "file:///etc/passwd", "https://[::1"])
def test_pages_without_a_host_are_refused(url):
    assert "a page without a host" in login_page_refusal(url)


def test_the_simulator_page_is_allowed_only_on_its_own_origin():
    assert login_page_refusal("http://127.0.0.1:41234/lingma/login?nonce=abc", SIMULATOR) == ""
    assert login_page_refusal("http://127.0.0.1:41235/lingma/login", SIMULATOR)  # another port
    assert login_page_refusal("http://localhost:41234/lingma/login", SIMULATOR)  # another host name
    assert login_page_refusal("https://127.0.0.1:41234/lingma/login", SIMULATOR)  # another scheme
    assert login_origins("", None) == frozenset()


def test_the_dedicated_domain_is_allowed_on_its_own_origin_only():
    origins = login_origins("https://lingma.corp.example/api", None)
    assert login_page_refusal("https://LINGMA.corp.example/sso/login?x=1", origins) == ""
    assert login_page_refusal("https://lingma.corp.example:443/sso", origins) == ""
    assert login_page_refusal("http://lingma.corp.example/sso", origins)
    assert login_page_refusal("https://sso.corp.example/login", origins)
    assert login_page_refusal("https://signin.aliyun.com/login", origins) == ""  # the cloud stays allowed


def test_origin_spells_out_the_default_port():
    assert origin("https://Signin.Aliyun.com/x?y") == "https://signin.aliyun.com:443"
    assert origin("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert origin("ftp://example.com/") == ""  # no known default port
    assert origin("http://example.com:notaport/") == ""
