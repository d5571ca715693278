"""Property-based test of the web API (issue 20, item 13): requests generated from the server's
own OpenAPI schema (`/api/openapi.json`) against a real uvicorn on loopback; none may get a 5xx,
every refusal is the documented JSON error, and the server stays healthy.

Bounded in examples (FACEVEIL_API_EXAMPLES per operation, default 30) and in time (a deadline
for the whole run); derandomized, so a run is repeatable, and with no example database.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (the test extra)")
pytest.importorskip("fastapi", reason="needs the web extra: pip install 'faceveil[web]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.web.test_web_http import call, running  # noqa: E402

EXAMPLES = int(os.environ.get("FACEVEIL_API_EXAMPLES", "30"))
DEADLINE_S = 240.0  # for all operations together; what is left is skipped, not failed
BOUNDARY = "propertyboundary7d3"


def _png(width: int, height: int, seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


PICTURE = _png(48, 40, 1)
# Files a client might send: real small pictures, broken ones, zips good and hostile, noise.
FILES = st.one_of(
    st.just(PICTURE), st.just(PICTURE),  # a good picture half the time, so jobs run too
    st.sampled_from([
        PICTURE, PICTURE[: len(PICTURE) // 2], b"", b"\x89PNG\r\n\x1a\n", b"GIF89a" + b"\0" * 20,
        b"\xff\xd8\xff\xe0" + b"\0" * 40, _zip([("a.png", PICTURE)]), _zip([("../evil.png", PICTURE)]),
        _zip([]), _zip([("inner.zip", _zip([("a.png", PICTURE)]))]), b"PK\x03\x04" + b"\0" * 30,
        b"\0\0\0\x18ftypisom" + b"\0" * 64, b"RIFF\0\0\0\0AVI LIST",
    ]),
    st.binary(max_size=512),
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
NAMES = st.one_of(st.sampled_from(["a.png", "x.jpg", "clip.mp4", "photos.zip", "", "../../etc/passwd",
                                   "a\"b;c.png", "caf\u00e9.png", "a\nb.png", "CON", "." * 300]), TEXT)


def _field(schema: dict) -> st.SearchStrategy:
    """A value for one form field: one of the choices its description lists, or anything."""
    choices = [c.strip().split(" ")[0] for c in schema.get("description", "").split("|")]
    choices = [c for c in choices if c and c.replace("_", "").isalnum()]
    odd = st.one_of(TEXT, st.sampled_from(["", "0", "-1", "1e309", "nan", "#zzzzzz", "20", "64",
                                           "9" * 40, "\x00", "blur"]))
    if not choices:
        return odd
    good = st.sampled_from(choices)
    return st.one_of(good, good, good, odd)  # mostly valid, so the other fields get their turn


def _part(name: str, value: object, filename: str | None = None) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{quote(name)}"'
    if filename is not None:
        head += f'; filename="{quote(filename, safe=" ./")}"\r\nContent-Type: application/octet-stream'
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return head.encode() + b"\r\n\r\n" + data + b"\r\n"


def _body(schema: dict) -> st.SearchStrategy:
    """A multipart body for an operation's form schema: each field present or not, files as
    one or several parts, now and then a field the schema does not know or a broken body."""
    props = schema.get("properties", {})

    @st.composite
    def build(draw) -> tuple[bytes, str]:
        parts: list[bytes] = []
        for name, prop in props.items():
            if draw(st.integers(0, 3)) and name not in schema.get("required", ()):
                continue  # options are left out three times in four
            if prop.get("format") == "binary" or prop.get("items", {}).get("format") == "binary":
                count = draw(st.integers(0, 3 if prop.get("type") == "array" else 2))
                parts += [_part(name, draw(FILES), draw(NAMES)) for _ in range(count)]
            else:
                parts += [_part(name, draw(_field(prop))) for _ in range(draw(st.integers(1, 2)))]
        if draw(st.integers(0, 9)) == 0:
            parts.append(_part(draw(st.sampled_from(["extra", "file", "files", "x" * 100])), draw(TEXT),
                               draw(st.one_of(st.none(), NAMES))))
        body = b"".join(draw(st.permutations(parts))) + f"--{BOUNDARY}--\r\n".encode()
        kind = draw(st.integers(0, 19))
        ctype = f"multipart/form-data; boundary={BOUNDARY}"
        if kind == 0:
            body = body[: draw(st.integers(0, len(body)))]  # cut short
        elif kind == 1:
            ctype = draw(st.sampled_from(["application/json", "text/plain", "multipart/form-data",
                                          "multipart/form-data; boundary=other", ""]))
        return body, ctype

    return build()


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items()
            for method, op in ops.items()]


def _path(path: str, op: dict, draw) -> str:
    for param in op.get("parameters", []):
        if param["in"] != "path":
            continue
        if param["schema"].get("type") == "integer":
            value = draw(st.one_of(st.integers(-5, 5), st.integers(), TEXT))
        else:
            value = draw(st.one_of(st.sampled_from(KNOWN_JOBS or ["0" * 32]), TEXT,
                                   st.sampled_from(["..", ".", "%00", "a/b", "0" * 33, "A" * 5000])))
        path = path.replace("{" + param["name"] + "}", quote(str(value), safe="") or "%20")
    return path


def _property(check) -> None:
    """Run `check(data)` on EXAMPLES generated examples (repeatable: derandomized)."""
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data) -> None:
        check(data)

    run()


KNOWN_JOBS: list[str] = []  # ids of jobs the generated requests made, so some get real ids


def test_no_generated_request_gets_a_server_error(tmp_path):
    with running(tmp_path, warm=False, queue_size=4, max_upload_bytes=1 << 20, max_files=5,
                 job_ttl=60) as srv:
        status, _, raw = call(srv.port, "GET", "/api/openapi.json")
        assert status == 200
        schema = json.loads(raw)
        operations = _operations(schema)
        assert {("POST", "/api/anonymize"), ("POST", "/api/jobs"), ("GET", "/api/jobs/{job_id}"),
                ("DELETE", "/api/jobs/{job_id}")} <= {(m, p) for m, p, _ in operations}
        started = time.monotonic()
        seen: dict[int, int] = {}

        for method, template, op in operations:
            documented = {int(code) for code in op.get("responses", {}) if code.isdigit()}
            form = (op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                    .get("schema"))

            def check(data, method=method, template=template, op=op, form=form,
                      documented=documented) -> None:
                if time.monotonic() - started > DEADLINE_S:
                    return
                path = _path(template, op, data.draw)
                body, headers = None, {}
                if form is not None:
                    body, ctype = data.draw(_body(form))
                    if ctype:
                        headers["Content-Type"] = ctype
                status, answer, content = call(srv.port, method, path, body, headers)
                seen[status] = seen.get(status, 0) + 1
                where = f"{method} {path[:120]} -> {status}: {content[:300]!r}"
                assert status < 500, where
                assert status in documented | {400, 404, 405, 408, 413, 415, 422, 429}, where
                if status >= 400:
                    error = json.loads(content)
                    assert set(error) == {"error", "message"} and error["message"], where
                    assert "Traceback" not in error["message"], where
                elif method == "POST" and template == "/api/jobs":
                    KNOWN_JOBS.append(json.loads(content)["id"])
                assert answer.get("x-content-type-options") == "nosniff", where

            _property(check)

        print("statuses seen:", dict(sorted(seen.items())))
        assert sum(seen.values()) >= len(operations) * min(EXAMPLES, 5)
        assert any(200 <= s < 300 for s in seen), seen  # some requests were good ones
        status, _, health = call(srv.port, "GET", "/api/health")
        assert status == 200 and json.loads(health)["ok"]
