"""--use_tensorboard: real tiny trainings, read back with TensorBoard's own event reader."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import train as train_entry  # noqa: E402
from options.config import DisplayConfig  # noqa: E402
from translate.visualize import TrainingDisplay, free_port  # noqa: E402

# Tiny nets on the built-in data; Visdom off (--display_id 0) must leave TensorBoard on (classic #1616).
TINY = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
        "--num_threads", "0", "--print_freq", "1", "--display_freq", "1", "--display_id", "0",
        "--gpu_ids", "-1", "--save_epoch_freq", "1000", "--use_tensorboard"]


def _train(checkpoints: Path, iters: int, *extra: str) -> Path:
    argv = ["--name", "tb", "--checkpoints_dir", str(checkpoints), "--max_iters", str(iters), *TINY, *extra]
    assert train_entry.main(argv) == 0
    return checkpoints / "tb"


def _events(log_dir: Path) -> EventAccumulator:
    reader = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    reader.Reload()
    return reader


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_losses_rates_speed_visuals_and_config_are_in_the_event_files(tmp_path):
    run = _train(tmp_path / "ck", 3, "--lr", "0.0003", "--lr_D", "0.0001")
    events = _events(run / "tensorboard")
    records = _records(run)
    assert [r["total_iters"] for r in records] == [1, 2, 3]
    tags = events.Tags()
    loss_names = list(records[0]["losses"])
    assert {"cycle_a", "gan_ab", "disc_a"} <= set(loss_names)
    assert set(tags["scalars"]) == ({f"loss/{n}" for n in loss_names}
                                    | {"lr/G", "lr/D", "speed/images_per_s", "progress/epoch"})
    for name in loss_names:   # every logged loss, at the step that loss_log.jsonl gives it
        logged = [(e.step, e.value) for e in events.Scalars(f"loss/{name}")]
        assert logged == [(r["total_iters"], pytest.approx(r["losses"][name], rel=1e-6)) for r in records]
    speed = [(e.step, e.value) for e in events.Scalars("speed/images_per_s")]
    assert speed == [(r["total_iters"], pytest.approx(r["images_per_s"], rel=1e-6)) for r in records]
    assert [e.value for e in events.Scalars("lr/G")] == [pytest.approx(3e-4)] * 3
    assert [e.value for e in events.Scalars("lr/D")] == [pytest.approx(1e-4)] * 3
    # The visuals as one labelled grid per --display_freq step: 8 CycleGAN pictures of 32 px.
    images = events.Images("visuals")
    assert [im.step for im in images] == [1, 2, 3]
    grid = Image.open(io.BytesIO(images[-1].encoded_image_string))
    assert grid.width > 4 * 32 and grid.height > 2 * 32
    # The resolved configuration and the classic options text.
    resolved = events.Tensors("config/resolved/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(resolved)["optim"]["lr"] == 3e-4      # indented JSON: still JSON
    options = events.Tensors("config/options/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "use_tensorboard: True" in options


def test_a_resumed_run_continues_the_curves_and_drops_the_repeated_steps(tmp_path):
    # The first run saves a checkpoint at iteration 2, then logs iteration 3 (as a crash would
    # leave it); resuming from iteration 2 repeats step 3, which must show once, the new value.
    checkpoints = tmp_path / "ck"
    run = _train(checkpoints, 3, "--save_latest_freq", "2", "--save_by_iter")
    assert (run / "ckpt_iter_2").is_dir()
    first = _records(run)
    _train(checkpoints, 4, "--continue_train", "--load_iter", "2")
    resumed = _records(run)[len(first):]
    assert [r["total_iters"] for r in resumed] == [3, 4]
    events = _events(run / "tensorboard")
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    expected = first[:2] + resumed
    for name in first[0]["losses"]:
        logged = [(e.step, e.value) for e in events.Scalars(f"loss/{name}")]
        assert logged == [(r["total_iters"], pytest.approx(r["losses"][name], rel=1e-6)) for r in expected]
    # Step 3 holds the resumed process's value, not the first's (the bit-exact resume makes the
    # losses equal; the measured speed is not).
    assert first[2]["images_per_s"] != resumed[0]["images_per_s"]
    speed = [(e.step, e.value) for e in events.Scalars("speed/images_per_s")]
    assert speed == [(r["total_iters"], pytest.approx(r["images_per_s"], rel=1e-6)) for r in expected]
    assert [im.step for im in events.Images("visuals")] == [1, 2, 3, 4]


def test_validation_metrics_and_only_the_main_process_writes(tmp_path):
    cfg = DisplayConfig(display_id=0, no_html=True, use_tensorboard=True)
    quiet = TrainingDisplay(cfg, tmp_path / "other_rank", "m", "opts", enabled=False)
    quiet.on_metrics(1, 10, {"fid": 1.0})
    quiet.close()
    assert not (tmp_path / "other_rank").exists()
    display = TrainingDisplay(cfg, tmp_path / "main", "m", "opts", enabled=True)
    display.on_metrics(1, 10, {"fid": 12.5, "psnr": 20.0})
    display.on_metrics(2, 20, {"fid": 11.0, "psnr": 21.0})
    display.close()
    events = _events(tmp_path / "main" / "tensorboard")
    assert [(e.step, e.value) for e in events.Scalars("val/fid")] == [(10, 12.5), (20, 11.0)]
    assert [(e.step, e.value) for e in events.Scalars("val/psnr")] == [(10, 20.0), (20, 21.0)]


def test_without_tensorboard_installed_training_does_not_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)   # what `import tensorboard` sees when absent
    assert train_entry.main(["--checkpoints_dir", str(tmp_path), *TINY]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'train.py: error: --use_tensorboard needs the tensorboard package: '
        'pip install -e ".[tensorboard]" (or pip install tensorboard)']
    assert not any(tmp_path.iterdir())   # stopped before any work


def test_tensorboard_logdir_checkpoints_shows_every_run(tmp_path):
    """The real TensorBoard server, on 127.0.0.1, lists each run folder with its curves."""
    cfg = DisplayConfig(display_id=0, no_html=True, use_tensorboard=True)
    for name, value in (("horse2zebra", 0.5), ("facades", 0.25)):
        display = TrainingDisplay(cfg, tmp_path / "ck" / name, name, "opts", enabled=True)
        display.on_losses(1, 1, 0.1, {"gan_ab": value}, 0.1, 0.0, 5.0, None, total_iters=7)
        display.close()
    port, log = free_port(), tmp_path / "tensorboard.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path / "ck"),
                                   "--host", "127.0.0.1", "--port", str(port)], stdout=sink, stderr=sink)
    try:
        base = f"http://127.0.0.1:{port}/data"
        runs = _get_json(f"{base}/runs", server, log)
        assert sorted(runs) == ["facades/tensorboard", "horse2zebra/tensorboard"]
        query = urllib.parse.urlencode({"run": "facades/tensorboard", "tag": "loss/gan_ab"})
        points = _get_json(f"{base}/plugin/scalars/scalars?{query}", server, log)
        assert [(step, value) for _, step, value in points] == [(7, 0.25)]
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_json(url: str, server: subprocess.Popen, log: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                raise AssertionError(f"tensorboard exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
