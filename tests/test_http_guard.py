"""faceveil.http_guard: the checks the web app and the live server share (issue 20, items 10, 11)."""

from __future__ import annotations

import secrets

import pytest

from faceveil.errors import ConfigError
from faceveil.http_guard import (
    Throttle,
    check_token,
    cross_site,
    host_refusal,
    is_loopback,
    new_token,
    token_matches,
    token_weakness,
)


@pytest.mark.parametrize(("token", "weak"), [
    ("aaaaaaaaaaaaaaaa", True), ("password12345678", True), ("abcdefghijklmnopqrstuvwxyz", True),
    ("qwertyuiopasdfghjkl", True), ("1234567890987654321", True), ("secretsecretsecret", True),
    ("Password123456789!", True), ("short", True), ("has spaces in it but long", True),
    ("ababababababababab", True), ("faceveil-token-test-123", True),
    ("Zq8-hT2vLm9xKp4wRb7n", False), ("correct-horse-battery-staple", False),
    ("s3cret-token-for-tests-0123456789", False),
])
def test_guessable_tokens_are_told_apart_from_random_ones(token, weak):
    assert (token_weakness(token) is not None) is weak, token_weakness(token)


def test_random_tokens_pass():
    assert token_weakness(new_token()) is None and len(new_token()) >= 40
    weak = sum(token_weakness(secrets.token_urlsafe(16)) is not None for _ in range(2000))
    assert weak == 0
    with pytest.raises(ConfigError, match="too easy to guess"):
        check_token("password12345678")
    assert check_token("  Zq8-hT2vLm9xKp4wRb7n ") == "Zq8-hT2vLm9xKp4wRb7n" and check_token(None) is None


def test_token_comparison():
    assert token_matches("Zq8-hT2vLm9xKp4wRb7n", "Zq8-hT2vLm9xKp4wRb7n")
    assert not token_matches("Zq8-hT2vLm9xKp4wRb7", "Zq8-hT2vLm9xKp4wRb7n")
    assert not token_matches("\udcff\u00e9", "Zq8-hT2vLm9xKp4wRb7n")  # odd input is just wrong


def test_throttle_backs_off_per_client_and_forgets():
    now = [0.0]
    t = Throttle(free=3, max_delay=8.0, forget=100.0, max_clients=2, clock=lambda: now[0])
    assert [t.failed("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert t.wait("a") == 0.0
    assert [t.failed("a") for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert t.wait("a") == 8.0 and t.wait("b") == 0.0
    now[0] = 5.0
    assert t.wait("a") == 3.0
    now[0] = 200.0  # quiet for longer than `forget`: a fresh start
    assert t.wait("a") == 0.0 and t.failed("a") == 0.0
    t.failed("b")
    t.failed("c")  # at most two clients are remembered: the quietest goes
    assert len(t) == 2
    t.succeeded("b")
    assert t.wait("b") == 0.0 and len(t) == 1


@pytest.mark.parametrize(("host", "token", "refused"), [
    ("127.0.0.1:8000", False, False), ("localhost", False, False), ("[::1]:80", False, False),
    ("app.localhost:8000", False, False), ("127.9.9.9", False, False),
    ("evil.example", False, True), ("127.0.0.1.evil.example", False, True), ("", False, True),
    ("[::1", False, True), ("0.0.0.0", False, True),
    ("evil.example", True, False), ("lan-box:8000", False, False),
])
def test_host_names(host, token, refused):
    assert (host_refusal(host, token=token, extra_hosts=("LAN-box",)) is not None) is refused


@pytest.mark.parametrize(("headers", "crossed"), [
    ({}, False), ({"origin": "http://127.0.0.1:8000"}, False), ({"sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "none"}, False), ({"sec-fetch-site": "cross-site"}, True),
    ({"sec-fetch-site": "same-site"}, True), ({"origin": "http://evil.example"}, True),
    ({"origin": "null"}, True), ({"origin": "http://127.0.0.1:9999"}, True),
    ({"origin": "http://[::1"}, True),
])
def test_other_sites(headers, crossed):
    assert cross_site(headers.get, "127.0.0.1:8000") is crossed


def test_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("LOCALHOST") and not is_loopback("10.0.0.1") and not is_loopback("example.com")
