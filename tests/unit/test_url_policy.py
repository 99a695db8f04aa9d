"""The SSRF rules for URLs users give us (videos to fetch, webhooks to call)."""

from __future__ import annotations

import ipaddress

import pytest

from talent_assets.core.url_policy import (
    UrlAllowList,
    UrlRefusedError,
    address_problem,
    check_addresses,
    split_url,
)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 does not hide loopback
    ],
)
def test_non_public_addresses_are_named(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_every_resolved_address_must_pass_unless_allowed() -> None:
    nobody = UrlAllowList.parse("")
    assert str(check_addresses("example.com", ["93.184.215.14"], nobody)) == "93.184.215.14"
    # One private address among public ones (a DNS answer built to slip through) refuses.
    with pytest.raises(UrlRefusedError, match=r"10\.0\.0\.5 is a private address"):
        check_addresses("example.com", ["93.184.215.14", "10.0.0.5"], nobody)
    with pytest.raises(UrlRefusedError, match="TALENT_URL_ALLOW"):
        check_addresses("localhost", ["127.0.0.1"], nobody)
    by_network = UrlAllowList.parse(" 127.0.0.0/8, 10.0.0.5 ")
    assert str(check_addresses("localhost", ["127.0.0.1"], by_network)) == "127.0.0.1"
    assert str(check_addresses("x", ["10.0.0.5"], by_network)) == "10.0.0.5"
    by_name = UrlAllowList.parse("Media.Internal.")
    assert str(check_addresses("media.internal", ["10.9.9.9"], by_name)) == "10.9.9.9"
    with pytest.raises(UrlRefusedError):
        check_addresses("other.internal", ["10.9.9.9"], by_name)
    with pytest.raises(UrlRefusedError, match="does not resolve"):
        check_addresses("example.com", [], nobody)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/a.mp4", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("example.com/a.mp4", "only http and https"),
        ("http://user:secret@example.com/a.mp4", "user name or password"),
        ("http:///a.mp4", "no host"),
        ("http://example.com:99999/a.mp4", "not a valid URL"),
    ],
)
def test_urls_refused_before_any_lookup(url: str, message: str) -> None:
    with pytest.raises(UrlRefusedError, match=message):
        split_url(url)


def test_url_parts() -> None:
    target = split_url("HTTPS://Example.com/v/a.m3u8?sig=1")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https", "example.com", 443, "/v/a.m3u8?sig=1",
    )  # fmt: skip
    assert split_url("http://127.0.0.1:8080").path == "/"
