"""End to end: `faceveil serve` as a real process on a free loopback port, driven by Playwright in
Debian's Chromium (/usr/bin/chromium; Playwright never downloads a browser here).

    FACEVEIL_SCREENSHOT=1 pytest tests/web/test_web_e2e.py -k screenshot   # rewrites docs/web.png

The screenshot shows scikit-image's astronaut (a NASA photo in the public domain), not the
shared evaluation data, whose licence allows no copies in the project.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, require_data
from faceveil.evaluation import changed_pixels, collateral, face_covered
from faceveil.media.images import read_image

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # Playwright adds --headless, --no-sandbox
# and a fresh --user-data-dir itself
PHOTO = "wider_face_val_subset/12--Group/12_Group_Group_12_Group_Group_12_80.jpg"  # 21 faces >= 32 px
ZIPPED = ("wider_face_val_subset/10--People_Marching/10_People_Marching_People_Marching_2_395.jpg",
          "wider_face_val_subset/13--Interview/13_Interview_Interview_On_Location_13_736.jpg")
TOKEN = "e2e-Tq7vKx2mW9pLr4Zd"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                       "(apt-get install chromium; .ci/run installs it)"),
]
pytest.importorskip("fastapi", reason="needs the web extra: pip install 'faceveil[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the test extra)")


def wait_js(page, expression: str, timeout: float = 60.0) -> None:
    """Poll a JavaScript expression from Python until it is truthy. Not page.wait_for_function:
    its later polls run eval() inside the page, which the app's CSP (script-src 'self') blocks,
    so it fails whenever the condition is not already true at the first look."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:.0f} s: {expression}")
        page.wait_for_timeout(50)


class Server:
    """`python -m faceveil serve --port 0` in its own process; the address is its first line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faceveil", "serve", "--port", "0", "--workers", "1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise AssertionError(f"no address from faceveil serve: {line!r} {self.proc.stderr.read()}")
        self.url = line
        self.base = line.split("#")[0].rstrip("/")

    def get(self, path: str, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, headers={
            "Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    s = Server("--data-dir", str(data))
    deadline = time.monotonic() + 120
    while not s.get("/api/health")[1].get("ready"):  # the worker has loaded its detector
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert len(list(data.iterdir())) == 1  # its private folder
    yield s
    err = s.stop()
    assert s.proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises SIGTERM once stopped
    assert "Traceback" not in err, err
    assert list(data.iterdir()) == []  # uploads, results and the private folder are gone


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield b
        b.close()


class Page:
    """A new page that records console errors and every address it asks for."""

    def __init__(self, browser, server: Server, url: str | None = None) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url or server.url)
        self.page.wait_for_selector("#options select[name=method]")
        self.server = server

    def check_clean(self) -> None:
        """No script or CSP errors, and no request left this server (blob: URLs are local)."""
        assert not self.errors, self.errors
        local = (self.server.base + "/", "blob:", "data:")
        outside = [u for u in self.requests if not u.startswith(local)]
        assert not outside, outside


def _counted(entry: dict) -> list:
    ignore = entry.get("ignore") or [False] * len(entry["boxes"])
    return [b for b, ig in zip(entry["boxes"], ignore, strict=True) if not ig and b[3] - b[1] >= 32]


@pytest.fixture(scope="module")
def wider():
    root = require_data("images")
    meta = {e["file"]: e for e in json.loads((root / "wider_face_val_subset.json").read_text())["images"]}
    return root, meta


def test_upload_a_real_photo_wait_download_and_check_faces_are_hidden(browser, server, wider, tmp_path):
    root, meta = wider
    photo = root / PHOTO
    view = Page(browser, server)
    page = view.page
    page.select_option("select[name=format]", "png")  # lossless: the metric sees exactly what changed
    page.set_input_files("#files", str(photo))
    assert page.locator("#picked li").count() == 1
    page.click("#start")
    page.wait_for_selector(".job[data-state=done]", timeout=120_000)
    row = page.locator(".file[data-state=done]")
    assert re.search(r"\d+ faces? hidden", row.locator(".fstate").inner_text())
    # the comparison: the original on one side, the result on the other
    page.wait_for_selector(".frame img.after[src^='blob:']")
    wait_js(page, "document.querySelector('.frame img.before')?.naturalWidth > 0")
    with page.expect_download() as download:
        row.locator(".download").click()
    assert download.value.suggested_filename == f"{photo.stem}.anonymized.png"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)

    before, after = read_image(photo).rgb, read_image(saved).rgb
    boxes = _counted(meta[PHOTO])
    changed = changed_pixels(before, after)
    assert [b for b in boxes if not face_covered(changed, b)] == []
    assert collateral(changed, meta[PHOTO]["boxes"]) < 0.05  # hiding a small face is no collateral
    job_id = page.locator(".job").get_attribute("data-job")
    assert server.get(f"/api/jobs/{job_id}")[0] == 200
    page.locator(".job button", has_text="Clear").click()  # deletes the job on the server
    deadline = time.monotonic() + 10
    while server.get(f"/api/jobs/{job_id}")[0] != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    view.check_clean()
    page.close()


def test_a_zip_compares_from_inside_the_zip_and_downloads_as_one(browser, server, wider, tmp_path):
    root, meta = wider
    archive = tmp_path / "march.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ZIPPED:
            zf.write(root / name, f"march/{Path(name).name}")
    view = Page(browser, server)
    page = view.page
    page.set_input_files("#files", str(archive))
    page.click("#start")
    page.wait_for_selector(".job[data-state=done]", timeout=120_000)
    assert page.locator(".file[data-state=done]").count() == 2
    second = page.locator(".file").nth(1)
    second.locator("button", has_text="Compare").click()
    # the "before" side was read out of the zip by the page itself (DecompressionStream)
    width = read_image(root / ZIPPED[1]).rgb.shape[1]
    wait_js(page, f"document.querySelector('.frame img.before')?.naturalWidth === {width}")
    job_id = page.locator(".job").get_attribute("data-job")
    with page.expect_download() as download:
        page.locator(".job button", has_text="Download all").click()
    saved = tmp_path / "all.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
        inner = zf.read(names[1])
    assert names == [f"march/{Path(n).stem}.anonymized.jpg" for n in ZIPPED]
    after = read_image(inner).rgb
    before = read_image(root / ZIPPED[1]).rgb
    # JPEG in, JPEG out: re-encoding changes every pixel a little, so "changed" needs a margin here
    diff = abs(before.astype(int) - after.astype(int)).max(axis=2) > 12
    assert all(face_covered(diff, b) for b in _counted(meta[ZIPPED[1]]))
    page.wait_for_selector("text=the server has deleted this job")
    assert server.get(f"/api/jobs/{job_id}")[0] == 404  # deleted once its zip was sent
    view.check_clean()
    page.close()


def test_the_page_takes_the_token_from_its_address(browser):
    s = Server(env={"FACEVEIL_TOKEN": TOKEN})
    try:
        assert s.url.endswith(f"#token={TOKEN}")
        assert s.get("/api/options")[0] == 401
        view = Page(browser, s)  # options load only with the token
        page = view.page
        assert "#token" not in page.url  # taken out of the address bar at once
        assert page.evaluate("sessionStorage.getItem('faceveil-token')") == TOKEN
        view.check_clean()
        page.close()
        # without it, the page asks
        page = browser.new_page()
        asked: list[str] = []

        def answer(dialog) -> None:
            asked.append(dialog.message)
            dialog.accept(TOKEN)

        page.on("dialog", answer)
        page.goto(s.base + "/")
        page.wait_for_selector("#options select[name=method]")
        assert asked and "token" in asked[0]
        page.close()
    finally:
        s.stop()


def test_screenshot(browser, server, astronaut, tmp_path):
    """The page with a before/after comparison; FACEVEIL_SCREENSHOT=1 also writes docs/web.png."""
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo, quality=92)
    view = Page(browser, server)
    page = view.page
    page.set_input_files("#files", str(photo))
    page.click("#start")
    page.wait_for_selector(".job[data-state=done]", timeout=120_000)
    wait_js(page, "document.querySelector('.frame img.before')?.naturalWidth > 0 && "
                           "document.querySelector('.frame img.after')?.naturalWidth > 0")
    page.locator(".frame input[type=range]").fill("46")
    page.mouse.move(0, 0)
    shot = page.screenshot(full_page=False)
    image = Image.open(io.BytesIO(shot))
    assert image.size == (1280, 860)
    if os.environ.get("FACEVEIL_SCREENSHOT"):
        target = REPO / "docs" / "web.png"
        target.parent.mkdir(exist_ok=True)
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) \
            .save(target, optimize=True)
    view.check_clean()
    page.close()
