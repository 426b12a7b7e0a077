"""VisdomDisplay against a real Visdom server (python -m translate.viewer in a subprocess)."""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate.visualize import (VisdomDisplay, VisdomUnavailableWarning, free_port,
                                 start_local_server, wait_until_up)
from translate.visualize.images import labelled_grid, tensor_to_image

ROOT = Path(__file__).resolve().parents[1]


class Server:
    def __init__(self, tmp_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.env_path = tmp_path / f"visdom-{self.port}"
        self.proc = start_local_server(self.port, self.env_path)
        if not wait_until_up(self.port, timeout=60, proc=self.proc):
            self.stop()
            log = (self.env_path / "viewer.log").read_text(errors="replace")
            pytest.fail(f"the visdom server did not come up on port {self.port}:\n{log}")

    def client(self, env: str):
        import visdom
        return visdom.Visdom(port=self.port, env=env, raise_exceptions=True, use_incoming_socket=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()


def _visuals() -> dict[str, torch.Tensor]:
    colour = lambda r, g, b: torch.tensor([r, g, b], dtype=torch.float32).view(3, 1, 1).expand(3, 16, 16)
    return {"real_A": colour(1, -1, -1).unsqueeze(0), "fake_B": colour(-1, 1, -1).to(torch.bfloat16),
            "rec_A": colour(-1, -1, 1), "idt_B": torch.zeros(1, 1, 16, 16)}


def _window(client, win: str, env: str) -> dict:
    assert client.win_exists(win, env=env), f"window {win} missing"
    return json.loads(client.get_window_data(win, env=env))


def _decode(src: str) -> np.ndarray:
    header, payload = src.split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def test_grid_plot_and_text_reach_the_server(server):
    env = "live_test"
    display = VisdomDisplay(port=server.port, env=env, ncols=2, winsize=24, display_id=5, name="demo")
    visuals = _visuals()
    display.show_text("--netG <resnet_9blocks>\nepoch 1, iteration 7, 3.5 images/s")
    display.show_visuals(visuals)
    history = [(i / 4, {"G_A": 1.0 / (i + 1), "D_A": 0.25 + 0.01 * i}) for i in range(6)]
    for x, losses in history:
        display.plot_losses(x, losses)
    display.close(timeout=20)
    assert display.sent >= 3 and not display._thread.is_alive()

    client = server.client(env)
    grid = _window(client, "6", env)
    assert grid["type"] == "image" and grid["title"] == "demo images"
    expected = labelled_grid([tensor_to_image(t) for t in visuals.values()], list(visuals), 2, 24)
    np.testing.assert_array_equal(_decode(grid["content"]["src"]), expected)

    plot = _window(client, "5", env)
    traces = {t["name"]: t for t in plot["content"]["data"]}
    assert set(traces) == {"G_A", "D_A"}
    assert traces["G_A"]["x"] == pytest.approx([x for x, _ in history])
    assert traces["D_A"]["y"] == pytest.approx([l["D_A"] for _, l in history])

    text = _window(client, "7", env)
    assert "--netG &lt;resnet_9blocks&gt;" in text["content"] and "3.5 images/s" in text["content"]


@pytest.mark.slow
def test_server_going_away_never_blocks_and_warns_once(tmp_path):
    srv = Server(tmp_path)
    env = "going_away"
    slowest, visuals = 0.0, _visuals()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        display = VisdomDisplay(port=srv.port, env=env, display_id=1, ncols=4, winsize=16,
                                min_backoff=0.05, max_backoff=0.2, request_timeout=2.0)
        display.plot_losses(0.0, {"G": 1.0})
        deadline = time.monotonic() + 20
        while display.sent < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert display.connected and display.sent >= 1
        srv.stop()                                   # the server dies mid-run
        for i in range(60):
            for call in (lambda: display.show_visuals(visuals),
                         lambda: display.plot_losses(0.1 * i, {"G": 1.0 / (i + 1)}),
                         lambda: display.show_text(f"step {i}")):
                start = time.perf_counter()
                call()
                slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.01)
        assert not display.connected
        # it comes back on the same port: the display reconnects by itself
        back = Server(tmp_path, port=srv.port)
        try:
            deadline = time.monotonic() + 30
            while not display.connected and time.monotonic() < deadline:
                display.show_text("after restart")
                time.sleep(0.1)
            display.close(timeout=10)
            assert back.client(env).win_exists("3", env=env)
        finally:
            back.stop()
    ours = [w for w in caught if issubclass(w.category, VisdomUnavailableWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "translate.viewer" in str(ours[0].message)
    assert slowest < 0.020, f"a display call took {slowest * 1000:.1f} ms"


def test_unreachable_at_start_is_quiet_and_fast():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        display = VisdomDisplay(port=free_port(), display_id=1, min_backoff=0.05, max_backoff=0.1)
        start = time.perf_counter()
        for i in range(20):
            display.show_visuals(_visuals())
            display.plot_losses(i, {"G": 1.0})
        assert time.perf_counter() - start < 0.4
        time.sleep(0.5)
        start = time.perf_counter()
        display.close(timeout=5)
        assert time.perf_counter() - start < 3
    assert sum(issubclass(w.category, VisdomUnavailableWarning) for w in caught) == 1
    assert display.sent == 0 and display.dropped > 0


@pytest.mark.skipif(not (ROOT / "train.py").is_file(), reason="train.py is not written yet")
@pytest.mark.slow
def test_training_two_iterations_with_the_display_on(server, tmp_path):
    env = "train_live"
    command = [sys.executable, "train.py", "--model", "pix2pix", "--max_iters", "2",
               "--display_id", "1", "--display_port", str(server.port), "--display_env", env,
               "--display_server", "http://127.0.0.1", "--name", "live_display",
               "--checkpoints_dir", str(tmp_path / "ckpt"), "--netG", "unet_64", "--ngf", "8",
               "--ndf", "8", "--load_size", "64", "--crop_size", "64", "--num_threads", "0",
               "--display_freq", "1", "--print_freq", "1", "--gpu_ids", "-1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "VisdomUnavailableWarning" not in done.stderr
    client = server.client(env)
    assert client.win_exists("1", env=env) and client.win_exists("2", env=env)
    losses = _window(client, "1", env)
    assert losses["content"]["data"], "no loss trace reached visdom"
    run = tmp_path / "ckpt" / "live_display"
    assert (run / "web" / "index.html").is_file() and (run / "loss_log.jsonl").is_file()
