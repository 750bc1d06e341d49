"""A short load test (few clients, a few seconds) and the web page in headless Chromium when it is installed."""

from __future__ import annotations

import base64
import fcntl
import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from molmo.checkpoint.info import ModelInfo
from molmo.serve.server import BackgroundServer, ServerSettings, create_app

from .conftest import png_bytes

REPO = Path(__file__).resolve().parents[2]


def _load_test_module():
    spec = importlib.util.spec_from_file_location("load_test", REPO / "benchmarks" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_test"] = module
    spec.loader.exec_module(module)
    return module


def test_short_load_test_has_no_failures(api_model, tmp_path):
    load_test = _load_test_module()
    image = tmp_path / "img.png"
    image.write_bytes(png_bytes((120, 90)))
    with BackgroundServer(create_app(api_model, ServerSettings(max_batch_size=4))) as server:
        result = load_test.run_load_test(server.url, clients=4, seconds=3, max_tokens=4, image=image)
        health = httpx.get(server.url + "/health").json()
    assert result["requests"] >= 4 and result["failures"] == 0, result["errors"]
    assert result["p50_s"] <= result["p99_s"]
    assert health["requests"] == result["requests"]


def _chromium() -> str | None:
    if Path("/usr/lib/chromium/chromium").is_file():  # Debian's real binary (its /usr/bin wrapper is a script)
        return "/usr/lib/chromium/chromium"
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class PipeBrowser:
    """Headless Chromium driven over the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out;
    NUL-terminated JSON messages), so no websocket or Playwright package is needed."""

    def __init__(self, binary: str, user_dir: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # move the child's ends above fd 9 so the wiring below never closes what it just made fds 3 / 4
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = high

        # a tiny Python trampoline hands our pipe ends to the browser as fds 3 and 4, then execs it
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--window-size=1100,700",
                f"--user-data-dir={user_dir}", "about:blank"]
        trampoline = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
                      "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")
        self.proc = subprocess.Popen([sys.executable, "-c", trampoline, str(to_chrome_r), str(from_chrome_w), binary,
                                      *args], pass_fds=(to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._next_id, self.session = b"", 0, None

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            ready, _, _ = select.select([self._from_chrome], [], [], 0.5)
            if ready:
                self._buffer += os.read(self._from_chrome, 1 << 20)
        raise TimeoutError(f"no DevTools reply to {method}")

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


SHAPES = REPO / "src" / "molmo" / "assets" / "samples" / "shapes.png"  # 384 x 288


def test_page_in_headless_chromium(api_model, scripted, tmp_path, monkeypatch):
    """The page end to end in a real browser: streamed answer shown without point markup, markers and labels
    drawn inside the canvas, the loaded model and its notice in the header, a bad upload clearing the image."""
    binary = _chromium()
    if binary is None:
        pytest.skip("SKIPPED the web-page browser test: no Chromium found (/usr/lib/chromium/chromium or chromium, "
                    "chromium-browser, google-chrome on PATH); `apt-get install chromium` to run it")
    monkeypatch.setattr(api_model, "info", ModelInfo("tiny-test", version="v0", reads_images=False,
                                                     summary="a random test model"))
    # the second point sits near the right edge: its label goes left of the marker, inside the canvas
    scripted(' <point x="10.0" y="20.0" alt="cat">cat</point> and <point x="92.0" y="90.0" alt="black dog">black dog</point>',
             api_model.tokenizer)
    image = "data:image/png;base64," + base64.b64encode(SHAPES.read_bytes()).decode()
    with BackgroundServer(create_app(api_model, ServerSettings())) as server:
        browser = PipeBrowser(binary, tmp_path / "profile")
        try:
            browser.open(f"{server.url}/?q=Point%20to%20the%20cats.")
            # the image is too big for a query string (?image=): hand it to the page's own loader, then ask
            wait_for(browser, "typeof showImage === 'function' && $('model').textContent !== ''")
            browser.evaluate(f"showImage({json.dumps(image)})")
            wait_for(browser, "imageEl !== null")
            browser.evaluate("ask()")
            state = wait_for(browser, "document.body.dataset.done || ''", until=("1", "error"))
            answer = browser.evaluate("document.getElementById('answer').textContent")
            meta = browser.evaluate("document.getElementById('meta').textContent")
            header = browser.evaluate("document.getElementById('model').textContent")
            notice = browser.evaluate("document.getElementById('notice').textContent")
            icon = browser.evaluate("document.querySelector('link[rel=icon]').href")
            # the first marker is drawn at (38.4, 57.6) px of the 384x288 image: pink pixels there now
            pixel = browser.evaluate("Array.from(document.getElementById('canvas').getContext('2d')"
                                     ".getImageData(35, 57, 1, 1).data)")
            # marker 2 at (353.3, 259.2), r = 7: its label "black dog" ends 3 px left of the marker
            label_pink = browser.evaluate(
                "(() => { const d = document.getElementById('canvas').getContext('2d').getImageData(300, 252, 43, 14)"
                ".data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 90) n++; "
                "return n; })()")
            shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
            # a file that is not an image: the previous image and answer go, the error says why
            browser.evaluate("loadFile(new File(['hello'], 'notes.txt', {type: 'text/plain'}))")
            cleared = browser.evaluate("[canvas.style.display, imageDataUrl, $('answer').textContent, "
                                       "$('error').textContent]")
        finally:
            browser.close()
    if os.environ.get("MOLMO_SCREENSHOT"):  # e.g. MOLMO_SCREENSHOT=/tmp/page.png to look at the page
        Path(os.environ["MOLMO_SCREENSHOT"]).write_bytes(shot)
    assert state == "1", browser_error_hint(answer, meta)
    assert answer == "cat and black dog" and "2 point(s)" in meta  # the labels, not the <point ...> markup
    assert pixel[0] > 200 and pixel[1] < 80  # the marker colour (#ff0066)
    assert label_pink > 15, "the label of the right-edge point is not drawn left of its marker"
    assert header == "model: tiny-test (v0)"
    assert notice.startswith("note: tiny-test (v0) is a random test model") and "reads images" in notice
    assert icon.startswith("data:image/svg+xml")
    assert cleared == ["none", None, "", "Not an image: notes.txt"]
    assert len(shot) > 1000


def wait_for(browser: PipeBrowser, expression: str, until=(True,), timeout: float = 60):
    """Poll a page expression until it gives one of `until` (also while the page is still loading)."""
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = browser.evaluate(expression)
        except RuntimeError:  # no execution context yet
            value = None
        if value in until:
            return value
        time.sleep(0.2)
    return value


def browser_error_hint(answer: str, meta: str) -> str:
    return f"page did not finish: answer={answer!r} meta={meta!r}"
