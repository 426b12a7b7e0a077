"""python -m translate.pretrained against a local HTTP server (127.0.0.1) started here.

The server speaks HTTP Range and can cut a transfer short; it serves classic-shaped
generator state dicts made here (the classic networks at ngf 8, so they are small).
"""
from __future__ import annotations

import http.server
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_entry
from imaging import make_paired, random_image
from translate import load_translator
from translate.__main__ import main as translate_main
from translate.nets.generators import build_generator
from translate.pretrained import main

CUT = "cut"   # serve half of the body, then close the connection


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if self.path not in server.files:
            self.send_error(404, "Not Found")
            return
        data, content_type = server.files[self.path]
        cut = server.cut.pop(self.path, False)
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if cut else body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.cut, httpd.requests = {}, {}, []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def classic_file(net_g: str, norm: str, dropout: bool, legacy: bool = False) -> bytes:
    """The bytes of a classic latest_net_G.pth for this network, at ngf 8."""
    torch.manual_seed(0)
    g = build_generator(net_g, in_channels=3, out_channels=3, base_channels=8, norm=norm, use_dropout=dropout)
    state = g.state_dict()
    if legacy and norm == "batch":   # saved before PyTorch 0.4: no BatchNorm counters
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if legacy and norm == "instance":   # PyTorch 0.3's InstanceNorm kept running stats
        state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(8), torch.ones(8)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


CYCLEGAN_FILE = "/cyclegan/pretrained_models/horse2zebra.pth"


def images(folder: Path, n=2) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        random_image(40, i).resize((44, 36)).save(folder / f"{i}.png")
    return folder


def leftovers(ck: Path) -> list[str]:
    return sorted(p.name for p in ck.iterdir()) if ck.exists() else []


def test_cyclegan_model_downloads_then_translates_without_flags(server, tmp_path, capsys):
    httpd, url = server
    data = classic_file("resnet_9blocks", "instance", False, legacy=True)
    httpd.files[CYCLEGAN_FILE] = (data, "application/octet-stream")
    ck = tmp_path / "checkpoints"
    assert main(["horse2zebra", "--checkpoints_dir", str(ck), "--base_url", url]) == 0
    run = ck / "horse2zebra_pretrained"
    assert (run / "latest_net_G.pth").read_bytes() == data        # the published bytes, unchanged
    opt = (run / "train_opt.txt").read_text()
    assert "resnet_9blocks" in opt and "instance" in opt and "no_dropout: True" in opt
    assert leftovers(ck) == ["horse2zebra_pretrained"]            # no staging folder, no .part
    assert main(["horse2zebra", "--checkpoints_dir", str(ck), "--base_url", url]) == 0
    assert len(httpd.requests) == 1                               # already there: not fetched again

    src = images(tmp_path / "in")
    assert translate_main([str(src), "--name", "horse2zebra_pretrained", "--checkpoints_dir", str(ck),
                           "--output", str(tmp_path / "out"), "--gpu_ids", "-1", "--num_workers", "0",
                           "--no_progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["0.png", "1.png"]
    g = load_translator("horse2zebra_pretrained", checkpoints_dir=str(ck), device="cpu")
    written = np.asarray(Image.open(tmp_path / "out" / "0.png"), np.int16)
    assert np.abs(np.asarray(g(Image.open(src / "0.png")), np.int16) - written).max() <= 1
    assert test_entry.main(["--model", "test", "--name", "horse2zebra_pretrained", "--dataroot", str(src),
                            "--checkpoints_dir", str(ck), "--results_dir", str(tmp_path / "res"),
                            "--gpu_ids", "-1"]) == 0
    assert len(list((tmp_path / "res" / "horse2zebra_pretrained").rglob("*_fake.png"))) == 2


def test_pix2pix_model_from_a_mirror_in_the_environment(server, tmp_path, monkeypatch):
    httpd, url = server
    httpd.files["/pix2pix/models-pytorch/facades_label2photo.pth"] = (
        classic_file("unet_256", "batch", True, legacy=True), "application/octet-stream")
    monkeypatch.setenv("TRANSLATE_PRETRAINED_URL", url)
    ck = tmp_path / "checkpoints"
    assert main(["facades_label2photo", "--checkpoints_dir", str(ck)]) == 0
    run = ck / "facades_label2photo_pretrained"
    opt = (run / "train_opt.txt").read_text()
    assert "unet_256" in opt and "direction: BtoA" in opt and "no_dropout: False" in opt
    # The pre-0.4 file got its BatchNorm counters, so the strict loaders take it.
    assert any(k.endswith("num_batches_tracked") for k in torch.load(run / "latest_net_G.pth", weights_only=True))
    data = make_paired(tmp_path / "facades", n=2, phases=("test",))
    assert test_entry.main(["--model", "pix2pix", "--name", "facades_label2photo_pretrained", "--dataroot",
                            str(data), "--checkpoints_dir", str(ck), "--results_dir", str(tmp_path / "res"),
                            "--gpu_ids", "-1"]) == 0
    # --direction BtoA came from train_opt.txt: the inputs shown are the right halves (B).
    real = sorted((tmp_path / "res").rglob("*_real_A.png"))
    assert len(real) == 2
    shown = np.asarray(Image.open(real[0]), np.float64).mean((0, 1))
    pair = np.asarray(Image.open(data / "test" / "0.png"), np.float64)
    left, right = pair[:, :32].mean((0, 1)), pair[:, 32:].mean((0, 1))
    assert np.abs(shown - right).sum() < np.abs(shown - left).sum()


@pytest.mark.parametrize("problem, message", [
    ("truncated", "not a usable cyclegan generator"),
    ("missing", "HTTP 404"),
    ("html", "is a web page, not a weights file"),
    ("wrong network", "not a usable cyclegan generator"),
])
def test_bad_downloads_give_clear_errors_and_leave_nothing(server, tmp_path, capsys, problem, message):
    httpd, url = server
    data = classic_file("resnet_9blocks", "instance", False)
    if problem == "truncated":
        httpd.files[CYCLEGAN_FILE] = (data[:len(data) // 2], "application/octet-stream")
    elif problem == "html":
        httpd.files[CYCLEGAN_FILE] = (b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
                                      "text/html")
    elif problem == "wrong network":
        httpd.files[CYCLEGAN_FILE] = (classic_file("unet_256", "batch", True), "application/octet-stream")
    ck = tmp_path / "checkpoints"
    with pytest.raises(SystemExit) as exit_info:
        main(["horse2zebra", "--checkpoints_dir", str(ck), "--base_url", url])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert leftovers(ck) == []


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path, capsys):
    httpd, url = server
    data = classic_file("resnet_9blocks", "instance", False)
    httpd.files[CYCLEGAN_FILE] = (data, "application/octet-stream")
    httpd.cut[CYCLEGAN_FILE] = True
    ck = tmp_path / "checkpoints"
    with pytest.raises(SystemExit):
        main(["horse2zebra", "--checkpoints_dir", str(ck), "--base_url", url])
    assert "Run the same command again to resume" in capsys.readouterr().err
    part = ck / ".horse2zebra_pretrained.download" / "latest_net_G.pth.part"
    assert part.stat().st_size == len(data) // 2
    assert not (ck / "horse2zebra_pretrained").exists()
    assert main(["horse2zebra", "--checkpoints_dir", str(ck), "--base_url", url]) == 0
    assert httpd.requests[-1] == (CYCLEGAN_FILE, f"bytes={len(data) // 2}-")
    assert (ck / "horse2zebra_pretrained" / "latest_net_G.pth").read_bytes() == data
    assert leftovers(ck) == ["horse2zebra_pretrained"]


def test_a_file_from_the_classic_download_script_gets_its_train_opt(tmp_path, capsys):
    run = tmp_path / "checkpoints" / "style_monet_pretrained"
    run.mkdir(parents=True)
    (run / "latest_net_G.pth").write_bytes(classic_file("resnet_9blocks", "instance", False))
    assert main(["style_monet", "--checkpoints_dir", str(tmp_path / "checkpoints"),
                 "--base_url", "http://127.0.0.1:9"]) == 0          # nothing is fetched
    assert "wrote its train_opt.txt" in capsys.readouterr().err
    assert "resnet_9blocks" in (run / "train_opt.txt").read_text()
    other = run.rename(run.with_name("style_cezanne_pretrained"))    # a folder holding another model
    with pytest.raises(SystemExit):
        main(["style_cezanne", "--checkpoints_dir", str(tmp_path / "checkpoints")])
    assert (other / "latest_net_G.pth").exists()
    assert "already holds another generator" in capsys.readouterr().err


def test_list_names_and_kinds(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("style_vangogh", "iphone2dslr_flower", "edges2shoes", "day2night"):
        assert name in out
    with pytest.raises(SystemExit):
        main(["horses"])
    assert "unknown pretrained model 'horses'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["edges2shoes", "--kind", "cyclegan"])
    assert "use --kind pix2pix" in capsys.readouterr().err
