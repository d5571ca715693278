"""The web app's server hardening, through a real uvicorn on a loopback port: concurrent
downloads racing with deletion, stalled and slow uploads, wrong-token throttling, weak tokens,
and uploads left on disk by a server that was killed (issue 20, items 7, 8, 9, 11)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from faceveil.cli import main
from faceveil.errors import ConfigError
from faceveil.web import WebConfig, create_app
from faceveil.web.datadir import LOCK, PREFIX, DataDir

pytest.importorskip("fastapi", reason="needs the web extra: pip install 'faceveil[web]'")
uvicorn = pytest.importorskip("uvicorn", reason="needs the web extra: pip install 'faceveil[web]'")

TOKEN = "Zq8-hT2vLm9xKp4wRb7n"
BOUNDARY = "faceveiltestboundary"


# ------------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def running(tmp_path: Path, **options):
    """create_app(...) served by a real uvicorn in a thread, on a free loopback port."""
    options.setdefault("workers", 1)
    options.setdefault("data_dir", tmp_path / "data")
    app = create_app(WebConfig(**options))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield SimpleNamespace(port=sock.getsockname()[1], runtime=app.state.runtime)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, source: str | None = None):
    """(status, headers, body) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def multipart(files: list[tuple[str, str, bytes]], boundary: str = BOUNDARY) -> bytes:
    out = io.BytesIO()
    for field, name, data in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                  f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def png(seed: int, width: int = 1024, height: int = 768) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def finished_job(port: int, pictures: list[bytes]) -> str:
    status, _, body = call(port, "POST", "/api/jobs", multipart(
        [("files", f"p{i}.png", p) for i, p in enumerate(pictures)]), FORM)
    assert status == 202, body[:300]
    job_id = json.loads(body)["id"]
    deadline = time.monotonic() + 120
    while True:
        status, _, body = call(port, "GET", f"/api/jobs/{job_id}")
        state = json.loads(body)["state"]
        if state not in ("queued", "running"):
            assert state == "done", body[:500]
            return job_id
        assert time.monotonic() < deadline
        time.sleep(0.1)


def check_zip(data: bytes, names: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == names


# ------------------------------------------------------------- item 7: downloads and deletion


def test_a_zip_fetched_by_several_clients_at_once_reaches_each_whole(tmp_path):
    with running(tmp_path) as srv:
        job_id = finished_job(srv.port, [png(1), png(2)])
        folder = srv.runtime.data / job_id
        # client A starts its download and stops reading after the first bytes
        slow = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        slow.request("GET", f"/api/jobs/{job_id}/result")
        answer = slow.getresponse()
        assert answer.status == 200
        size = int(answer.getheader("content-length"))
        assert size > 2 << 20  # more than the socket buffers hold: the server is mid-body
        first = answer.read(64 * 1024)
        # meanwhile B fetches the whole zip and a third client deletes the job
        status, headers, whole = call(srv.port, "GET", f"/api/jobs/{job_id}/result")
        assert status == 200 and len(whole) == int(headers["content-length"]) == size
        check_zip(whole, 2)
        assert call(srv.port, "DELETE", f"/api/jobs/{job_id}")[0] == 204
        assert call(srv.port, "GET", f"/api/jobs/{job_id}/result")[0] == 404  # gone for new ones
        assert folder.exists()  # but not under A's download
        rest = answer.read()
        slow.close()
        assert first + rest == whole  # A got all of it, not a cut-off body
        deadline = time.monotonic() + 5
        while folder.exists():  # the last download to end removes the folder
            assert time.monotonic() < deadline
            time.sleep(0.02)

        # a burst: eight clients at once; each gets the whole zip, or 404 once it was deleted
        job_id = finished_job(srv.port, [png(3), png(4)])
        results: list[tuple[int, dict, bytes]] = []
        gate = threading.Barrier(8)

        def fetch() -> None:
            gate.wait()
            results.append(call(srv.port, "GET", f"/api/jobs/{job_id}/result"))

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 8
        assert {status for status, _, _ in results} <= {200, 404}, [r[0] for r in results]
        bodies = [body for status, _, body in results if status == 200]
        assert bodies and all(len(b) == len(bodies[0]) for b in bodies)
        check_zip(bodies[0], 2)
        deadline = time.monotonic() + 5
        while (srv.runtime.data / job_id).exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert call(srv.port, "GET", f"/api/jobs/{job_id}")[0] == 404


# ------------------------------------------------------------------ item 8: stalled uploads


def _stalled(port: int, length: int = 100_000, sent: bytes = b"", source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    s.sendall((f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
               f"multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
               ).encode() + sent)
    return s


def _answer(s: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while chunk := s.recv(65536):
            data += chunk
    s.close()
    return data


def test_stalled_and_slow_uploads_hold_no_place_and_are_cut_off(tmp_path):
    with running(tmp_path, warm=False, queue_size=1, upload_timeout=1.0, upload_min_rate=4096,
                 max_uploads_per_client=8) as srv:  # room for 2 requests: 1 running, 1 waiting
        head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; ".encode()
        # twelve uploads from two other addresses send their headers, maybe a little, then stall
        stalled = [_stalled(srv.port, sent=head if i % 2 else b"", source=f"127.0.0.{2 + i % 2}")
                   for i in range(12)]
        time.sleep(0.3)
        # one address has at most 8 uploads on their way (max_uploads_per_client)
        stalled += [_stalled(srv.port, sent=head, source="127.0.0.2") for _ in range(2)]
        time.sleep(0.1)
        ninth = _answer(_stalled(srv.port, sent=head, source="127.0.0.2"))
        assert ninth.startswith(b"HTTP/1.1 429 ") and b"already on their way" in ninth, ninth
        # every request whose body has arrived still gets its turn (here: refused for being
        # empty, which happens after it took its place), never 429
        empty = multipart([("files", "a.png", b"")])
        for _ in range(3):
            status, _, body = call(srv.port, "POST", "/api/jobs", empty, FORM)
            assert status == 400 and b"empty file" in body, body
        assert call(srv.port, "GET", "/api/health")[0] == 200

        # a client that sends a few bytes now and then is too slow
        slow = _stalled(srv.port, sent=head)
        started = time.monotonic()
        for _ in range(12):
            try:
                slow.sendall(b"x" * 16)
            except OSError:
                break
            time.sleep(0.2)
        slow_answer = _answer(slow)
        assert b" 408 " in slow_answer.split(b"\r\n")[0] and b"too slow" in slow_answer, slow_answer
        assert time.monotonic() - started < 5

        for s in stalled:  # cut off after upload_timeout; the connection is closed
            answer = _answer(s)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"stalled" in answer and b"Traceback" not in answer
        health = json.loads(call(srv.port, "GET", "/api/health")[2])
        assert health["waiting"] == 0 and health["running"] == 0
        assert list(srv.runtime.data.iterdir()) == [srv.runtime.data / LOCK]  # nothing left behind


# ------------------------------------------------------------------- item 11: token guessing


def test_wrong_tokens_are_throttled_per_client(tmp_path):
    with running(tmp_path, token=TOKEN, warm=False) as srv:
        def health(token: str, source: str = "127.0.0.1") -> tuple[int, dict]:
            status, headers, _ = call(srv.port, "GET", "/api/health",
                                      headers={"Authorization": f"Bearer {token}"}, source=source)
            return status, headers

        assert health(TOKEN)[0] == 200
        statuses = [health(f"guess-{i:04d}-{TOKEN[:8]}")[0] for i in range(60)]
        # five free tries and a sixth that starts the wait; every later one is refused unread
        assert statuses[:6] == [401] * 6 and statuses[6] == 429, statuses
        assert statuses.count(401) <= 8, statuses  # a wait of 1, 2, 4 ... s after each further one
        status, headers = health(TOKEN)  # even the right token waits: guessing gains nothing
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert health(TOKEN, source="127.0.0.2")[0] == 200  # another client is not slowed down
        time.sleep(float(headers["retry-after"]) + 0.2)
        assert health(TOKEN)[0] == 200  # the wait is over; the right token is let in
        assert [health("wrong-token-0123456789abcdef")[0] for _ in range(6)] == [401] * 6


@pytest.mark.parametrize("token", ["aaaaaaaaaaaaaaaa", "password12345678", "1234567890abcdefgh",
                                   "qwertyuiopasdfghjkl", "secretsecretsecret", "short-but-random"])
def test_guessable_tokens_are_refused(token, capsys, monkeypatch):
    if token == "short-but-random":
        token = "x7Kq2"  # too short
    with pytest.raises(ConfigError, match="too easy to guess"):
        WebConfig(token=token)
    monkeypatch.delenv("FACEVEIL_TOKEN", raising=False)
    assert main(["serve", "--port", "0", "--token", token]) != 0
    err = capsys.readouterr().err
    assert "too easy to guess" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("token", ["Zq8-hT2vLm9xKp4wRb7n", "correct-horse-battery-staple"])
def test_random_tokens_and_passphrases_are_accepted(token):
    assert WebConfig(token=token).token == token


# --------------------------------------------------------------- item 9: uploads after a kill


def _dead_servers_folder(parent: Path) -> Path:
    """What a server killed together with its watchdog leaves: an upload under a lock nobody holds."""
    folder = parent / f"{PREFIX}deadbeef"
    (folder / "0123abcd" / "in").mkdir(parents=True)
    (folder / "0123abcd" / "in" / "0000.mp4").write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 1000)
    (folder / LOCK).write_bytes(b"")
    return folder


def test_a_new_server_removes_what_dead_servers_left_but_not_live_ones(tmp_path):
    parent = tmp_path / "data"
    parent.mkdir()
    dead = _dead_servers_folder(parent)
    alive = DataDir(parent, watchdog=False)  # another server, running
    alive_path = alive.open()
    (alive_path / "job").mkdir()
    other = parent / "not-ours"
    other.mkdir()
    unlocked = parent / f"{PREFIX}oldversion"  # no lock: maybe a running older server; left alone
    (unlocked / "job").mkdir(parents=True)
    os.utime(unlocked, (time.time() - 3600, time.time() - 3600))
    try:
        with running(tmp_path, warm=False) as srv:
            assert not dead.exists()
            assert (alive_path / "job").exists() and other.exists() and (unlocked / "job").exists()
            assert srv.runtime.data.parent == parent
            mine = srv.runtime.data
        assert not mine.exists()
    finally:
        alive.close()
    assert not alive_path.exists() and other.exists()


@pytest.mark.slow
def test_a_killed_server_leaves_no_upload_behind(tmp_path):
    import av

    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(250):
            frame = np.full((240, 320, 3), i % 256, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "faceveil", "serve", "--port", "0", "--workers", "1",
                             "--data-dir", str(data)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        status, _, body = call(port, "POST", "/api/jobs", multipart(
            [("files", "clip.mp4", clip.read_bytes())] * 3), FORM)
        assert status == 202, body[:300]
        job_id = json.loads(body)["id"]
        folders = [p for p in data.iterdir() if p.name.startswith(PREFIX)]
        assert len(folders) == 1 and list((folders[0] / job_id / "in").iterdir())  # uploads on disk
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while folders[0].exists():  # the watchdog removes the folder once the server is gone
        assert time.monotonic() < deadline, list(folders[0].rglob("*"))
        time.sleep(0.1)
    assert list(data.iterdir()) == []


def test_a_file_is_sent_in_byte_ranges_as_video_players_ask(tmp_path):
    with running(tmp_path) as srv:
        job_id = finished_job(srv.port, [png(5, 320, 240)])
        path = f"/api/jobs/{job_id}/files/0"
        status, headers, whole = call(srv.port, "GET", path)
        assert status == 200 and headers["accept-ranges"] == "bytes" and len(whole) > 1000
        size = len(whole)
        for asked, (start, end) in [("bytes=0-99", (0, 100)), ("bytes=100-", (100, size)),
                                    ("bytes=-50", (size - 50, size)), (f"bytes=10-{size + 5}", (10, size))]:
            status, headers, part = call(srv.port, "GET", path, headers={"Range": asked})
            assert status == 206 and part == whole[start:end], asked
            assert headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        status, headers, _ = call(srv.port, "GET", path, headers={"Range": f"bytes={size}-"})
        assert status == 416 and headers["content-range"] == f"bytes */{size}"
        for ignored in ("bytes=5-1", "bytes=0-1,5-9", "items=0-5", "bytes=x-"):  # the whole file
            status, _, body = call(srv.port, "GET", path, headers={"Range": ignored})
            assert status == 200 and body == whole, ignored
        # ranges never delete the job; the whole zip does
        assert call(srv.port, "GET", f"/api/jobs/{job_id}/result", headers={"Range": "bytes=0-9"})[0] == 206
        assert call(srv.port, "GET", f"/api/jobs/{job_id}")[0] == 200
        assert call(srv.port, "GET", f"/api/jobs/{job_id}/result")[0] == 200
        deadline = time.monotonic() + 5
        while call(srv.port, "GET", f"/api/jobs/{job_id}")[0] != 404:
            assert time.monotonic() < deadline
            time.sleep(0.05)
