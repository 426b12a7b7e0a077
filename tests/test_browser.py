"""Open the pages in headless Chromium (through chromedriver's WebDriver API) and look.

Screenshots go to test-artifacts/.  Skipped only when chromium or chromedriver is absent.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from options.config import DisplayConfig
from translate.visualize import (TrainingDisplay, VisdomDisplay, free_port, start_local_server,
                                 wait_until_up, write_results_page)
from translate.visualize.images import save_image

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="headless browser test needs chromium and chromedriver "
                                       "(apt-get install chromium chromium-driver)")
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
IMAGES_LOADED = """return Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.src]);"""


class Browser:
    """The few WebDriver commands these tests need, spoken over HTTP to chromedriver."""

    def __init__(self, profile: Path):
        self.port = free_port()
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                self.driver.kill()
                pytest.fail("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,1000"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _ready(self) -> bool:
        try:
            with _HTTP.open(f"http://127.0.0.1:{self.port}/status", timeout=2) as reply:
                return json.load(reply)["value"]["ready"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return False

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _HTTP.open(request, timeout=120) as reply:
                return json.load(reply)["value"]
        except urllib.error.HTTPError as err:
            raise AssertionError(f"WebDriver {method} {path}: {err.read().decode(errors='replace')}")

    def open(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def run(self, script: str):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": []})

    def wait_for(self, script: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(script)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.25)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot")))
        return path

    def quit(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.quit()


def _ramp(channel: int, size: int = 64) -> torch.Tensor:
    """A picture that is easy to recognise: a gradient in one colour channel, with a square."""
    t = torch.full((3, size, size), -1.0)
    t[channel] = torch.linspace(-1, 1, size).view(1, size).expand(size, size)
    t[:, size // 4:size // 2, size // 4:size // 2] = 1.0
    return t


def _visuals() -> dict[str, torch.Tensor]:
    return {"real_A": _ramp(0), "fake_B": _ramp(1), "rec_A": _ramp(2), "idt_B": _ramp(0).mean(0, keepdim=True)}


def _assert_all_images_load(browser: Browser, minimum: int) -> None:
    loaded = browser.wait_for(f"var r = (function(){{{IMAGES_LOADED}}})(); "
                              f"return r.length >= {minimum} && r.every(x => x[0]) ? r : null;", 15)
    assert loaded, f"images did not load: {browser.run(IMAGES_LOADED)}"


def test_training_page_in_chromium(browser, tmp_path):
    display = TrainingDisplay(DisplayConfig(display_id=0, display_winsize=128), tmp_path / "run",
                              "browser_demo", "--name browser_demo", enabled=True)
    for step in range(1, 4):
        display.on_visuals(_visuals(), epoch=step, iteration=step * 100, save_html=True)
        for i in range(10):
            x = step - 1 + i / 10
            display.on_losses(step, i * 10, x, {"G_GAN": 1.0 / (1 + x), "G_L1": 2.0 - x / 2,
                                                 "D_real": 0.3 + 0.05 * (i % 3)}, 0.01, 0.001, 20.0, 60.0)
    display.close()
    browser.open((tmp_path / "run" / "web" / "index.html").as_uri())
    _assert_all_images_load(browser, 12)
    assert browser.run("return document.querySelectorAll('svg.loss-plot polyline').length") == 3
    assert browser.run("return document.querySelector('svg.loss-plot').getBoundingClientRect().width") > 600
    browser.screenshot("training_page.png")


def test_results_pages_in_chromium(browser, tmp_path):
    rows = []
    for name in ["cat_01", "<script>alert(1)</script>", "a b#c?d", "cat_04", "cat_05"]:
        cells = []
        for label, picture in (("real_A", _ramp(0)), ("fake_B", _ramp(1))):
            file = name.replace("/", "_") + f"_{label}.png"
            save_image(picture, tmp_path / "images" / file)
            cells.append((label, f"images/{file}"))
        rows.append((name, cells))
    pages = write_results_page(tmp_path, "Results of browser_demo", rows, page_size=3, width=128)
    browser.open(pages[0].as_uri())
    _assert_all_images_load(browser, 6)
    assert browser.run("return document.querySelectorAll('h3')[1].textContent") == "<script>alert(1)</script>"
    assert browser.run("return typeof window.alert_was_called") == "undefined"
    browser.screenshot("results_page_1.png")
    browser.run("document.querySelector('a.next').click()")
    assert browser.wait_for("return location.href.endsWith('index_2.html') && document.readyState == 'complete'")
    _assert_all_images_load(browser, 4)
    browser.screenshot("results_page_2.png")


@pytest.mark.slow
def test_visdom_page_in_chromium(browser, tmp_path):
    port = free_port()
    server = start_local_server(port, tmp_path / "visdom")
    try:
        assert wait_until_up(port, 60, proc=server), (tmp_path / "visdom" / "viewer.log").read_text()
        display = VisdomDisplay(port=port, env="browser", ncols=2, winsize=128, display_id=1,
                                name="browser_demo")
        display.show_text("epoch 3, iteration 400, 21.5 images/s, time left 0:12:00\n\n--netG unet_256")
        display.show_visuals(_visuals())
        for i in range(30):
            display.plot_losses(i / 10, {"G_GAN": 1.0 / (1 + i / 10), "G_L1": 2.0 - i / 20, "D_real": 0.3})
        display.close(timeout=20)
        assert display.sent >= 3
        browser.open(f"http://127.0.0.1:{port}/env/browser")
        ready = browser.wait_for(
            "var img = document.querySelector('img[src^=\"data:image/png\"]');"
            "var traces = document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length;"
            "return img && img.complete && img.naturalWidth > 0 && traces >= 3 ? [img.naturalWidth, traces] : null;",
            45)
        browser.screenshot("visdom_page.png")
        assert ready, "the Visdom page did not show the image grid and the 3-line loss plot"
        assert browser.run("return document.body.innerText").count("browser_demo") >= 3
        _assert_all_images_load(browser, 1)
    finally:
        server.kill()
        server.wait(10)
