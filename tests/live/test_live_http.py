"""The live preview server (`faceveil live --serve`) applies the web app's rules (issue 20,
item 10): Host and Origin checks, security headers on every answer, a token off loopback, wrong
tokens throttled. Real `MjpegServer`s on loopback ports, real HTTP."""

from __future__ import annotations

import base64
import http.client
import socket
import time

import numpy as np
import pytest

from faceveil.errors import ConfigError
from faceveil.http_guard import token_weakness
from faceveil.live import MjpegServer
from faceveil.live.sources import Captured

PATHS = ("/", "/snapshot.jpg", "/stream.mjpg")
TOKEN = "Lv7-pQ2xWm9kRt4zNc8b"


def get(server: MjpegServer, path: str, headers: dict[str, str] | None = None,
        host: str | None = None, source: str | None = None):
    """(status, headers, first bytes of the body) of one GET to the server's port on loopback."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{server.port}" if host is None else host)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read(4096) if path != "/stream.mjpg" or response.status != 200 else \
            response.read(200)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def with_frame(server: MjpegServer) -> MjpegServer:
    image = np.full((48, 64, 3), 120, np.uint8)
    server.send(image, Captured(image, 0, time.monotonic()))
    return server


@pytest.fixture
def local():
    server = with_frame(MjpegServer("127.0.0.1", 0))
    yield server
    server.close()


@pytest.fixture
def remote():
    """Served on every address with a token made for it (as `--allow-remote` does)."""
    server = with_frame(MjpegServer("0.0.0.0", 0, allow_remote=True))
    yield server
    server.close()


def check_headers(headers: dict[str, str]) -> None:
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example",
                                  "192.168.1.20", "", "[::1"])
def test_without_a_token_only_loopback_names_are_answered(local, path, host):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 gets nothing."""
    status, headers, body = get(local, path, host=host)
    assert status == 403 and b"localhost" in body and b"\xff\xd8" not in body
    check_headers(headers)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "[::1]:{port}"])
def test_loopback_names_are_answered(local, host):
    status, headers, body = get(local, "/snapshot.jpg", host=host.format(port=local.port))
    assert status == 200 and body.startswith(b"\xff\xd8") and headers["content-type"] == "image/jpeg"
    check_headers(headers)


@pytest.mark.parametrize("path", PATHS[1:])
@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "http://evil.example"}, {"Origin": "null"}])
def test_other_sites_pages_cannot_read_the_feed(local, path, headers):
    status, answer, body = get(local, path, headers=headers)
    assert status == 403 and b"other sites" in body
    check_headers(answer)


def test_every_answer_has_the_security_headers(local):
    for path in ("/", "/snapshot.jpg", "/nothing-here", "/?x=%zz"):
        status, headers, _ = get(local, path)
        assert status in (200, 404), path
        check_headers(headers)
    status, headers, _ = get(local, "/stream.mjpg")
    assert status == 200 and headers["content-type"].startswith("multipart/x-mixed-replace")
    check_headers(headers)


def test_off_loopback_a_token_is_needed_and_one_is_made(remote):
    assert remote.token and token_weakness(remote.token) is None
    assert remote.url.endswith(f"/?token={remote.token}")
    assert remote.stream_url.endswith(f"/stream.mjpg?token={remote.token}")
    lan = f"192.168.1.20:{remote.port}"  # any name is answered when a token protects the server
    for path in PATHS:
        status, headers, body = get(remote, path, host=lan)
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert b"\xff\xd8" not in body
        check_headers(headers)
    basic = base64.b64encode(f"viewer:{remote.token}".encode()).decode()
    for headers, path in [({"Authorization": f"Bearer {remote.token}"}, "/snapshot.jpg"),
                          ({"Authorization": f"Basic {basic}"}, "/snapshot.jpg"),
                          ({}, f"/snapshot.jpg?token={remote.token}"),
                          ({"Authorization": f"Bearer {remote.token}"}, "/stream.mjpg")]:
        status, answer, body = get(remote, path, headers=headers, host=lan)
        assert status == 200 and b"\xff\xd8" in body, (headers, path, status)
        check_headers(answer)
    status, _, page = get(remote, f"/?token={remote.token}", host=lan)
    assert status == 200 and f'src="stream.mjpg?token={remote.token}"'.encode() in page
    status, _, _ = get(remote, "/snapshot.jpg", host=lan, headers={
        "Authorization": f"Bearer {remote.token}", "Sec-Fetch-Site": "cross-site"})
    assert status == 403  # the token does not let another site's page in


def test_wrong_tokens_are_throttled_per_client(remote):
    statuses = [get(remote, f"/snapshot.jpg?token=guess{i:04d}xyzzy-0123")[0] for i in range(40)]
    assert statuses[:6] == [401] * 6 and statuses[6] == 429 and statuses.count(401) <= 8, statuses
    status, headers, _ = get(remote, f"/snapshot.jpg?token={remote.token}")
    assert status == 429 and int(headers["retry-after"]) >= 1  # even the right one waits
    assert get(remote, f"/snapshot.jpg?token={remote.token}", source="127.0.0.2")[0] == 200


@pytest.mark.parametrize("token", ["aaaaaaaaaaaaaaaa", "password12345678", "short"])
def test_guessable_tokens_are_refused(token):
    with pytest.raises(ConfigError, match="too easy to guess"):
        MjpegServer("127.0.0.1", 0, token=token)


def test_a_remote_address_needs_a_token_or_allow_remote():
    with pytest.raises(ConfigError, match="--token"):
        MjpegServer("0.0.0.0", 0)
    server = MjpegServer("0.0.0.0", 0, token=TOKEN)
    try:
        assert server.token == TOKEN
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    finally:
        server.close()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("live") / "tiny.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(6):
            out.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8),
                                                        format="rgb24")))
        out.mux(s.encode(None))
    return path


def test_cli_makes_and_prints_a_token_off_loopback_and_refuses_weak_ones(tiny_clip, capsys, monkeypatch):
    from faceveil.cli import ExitCode, main

    monkeypatch.delenv("FACEVEIL_TOKEN", raising=False)
    assert main(["live", str(tiny_clip), "--no-preview", "--serve", "0.0.0.0:0", "--allow-remote",
                 "--quality", "fast"]) == ExitCode.OK
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "serving http://" in x)
    token = line.split("?token=", 1)[1].split()[0]
    assert token_weakness(token) is None and f"stream.mjpg?token={token}" in line
    assert main(["live", str(tiny_clip), "--no-preview", "--serve", "0.0.0.0:0",
                 "--token", "password12345678"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "too easy to guess" in err and "Traceback" not in err
    monkeypatch.setenv("FACEVEIL_TOKEN", TOKEN)
    assert main(["live", str(tiny_clip), "--no-preview", "--serve", "0.0.0.0:0", "--quality", "fast"]) \
        == ExitCode.OK
    assert f"?token={TOKEN}" in capsys.readouterr().err


def test_a_client_that_sends_nothing_is_dropped(local, monkeypatch):
    handler = local._httpd.RequestHandlerClass
    monkeypatch.setattr(handler, "timeout", 0.5)
    with socket.create_connection(("127.0.0.1", local.port), timeout=10) as s:
        s.sendall(b"GET /snapshot.jpg HTTP/1.1\r\n")  # and nothing more
        started = time.monotonic()
        assert s.recv(100) == b""  # closed by the server, not after our own 10 s
        assert time.monotonic() - started < 5
    assert get(local, "/snapshot.jpg")[0] == 200
