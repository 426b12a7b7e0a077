"""python -m translate: folder trees, odd sizes and formats, failures, resume, tiling, batching."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from imaging import random_image
from options import parse_train_options
from translate.__main__ import benchmark, main
from translate.checkpoint import save_checkpoint
from translate.nets.generators import build_generator
from translate.nets.layers import init_weights
from translate.networks import build_networks
from translate.inference.tiling import Runner, tile_starts, translate_padded, translate_tiled
from translate.inference.export import load_run_generator
from translate.inference.folder import DecodeDataset, FolderError, FolderOptions




def make_run(ck: Path, name: str, model: str, *extra: str) -> None:
    """A checkpoint in the format train.py writes, without spending time on training."""
    cfg = parse_train_options(["--name", name, "--checkpoints_dir", str(ck), "--model", model,
                               "--netG", "resnet_6blocks", "--ngf", "4", "--crop_size", "32",
                               "--load_size", "32", "--display_id", "0", "--gpu_ids", "-1", *extra])
    nets = build_networks(model, cfg.net, with_discriminators=False)
    save_checkpoint(ck / name, "latest", dict(nets.items()), cfg.to_dict(), model=model)


@pytest.fixture(scope="module")
def ck(tmp_path_factory) -> Path:
    ck = tmp_path_factory.mktemp("checkpoints")
    make_run(ck, "cyc", "cycle_gan", "--norm", "batch")
    make_run(ck, "gray", "pix2pix", "--input_nc", "1", "--output_nc", "1", "--dataroot", str(ck))
    return ck


def image(path: Path, size=(53, 37), seed=0, mode="RGB", **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = random_image(max(size), seed, 1 if mode == "L" else 3).resize(size)
    picture.save(path, **save)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "in"
    image(root / "top.png", (53, 37))                                  # odd size
    image(root / "a" / "b" / "deep.jpg", (40, 32), seed=1)
    image(root / "a" / "gray.png", (33, 29), seed=2, mode="L")
    ramp = (np.linspace(0, 65535, 30 * 20).reshape(20, 30)).astype(np.uint16)
    Image.fromarray(ramp).save(root / "a" / "sixteen.png")             # 16-bit grayscale
    exif = Image.Exif()
    exif[0x0112] = 6                                                   # stored sideways
    image(root / "phone.jpg", (40, 24), seed=3, exif=exif)
    image(root / "c" / "x.webp", (36, 28), seed=4)
    image(root / "c" / "x.bmp", (36, 28), seed=5)
    image(root / "c" / "x.tif", (36, 28), seed=6)
    image(root / "<script>x.png", (16, 16), seed=7)
    good = image(tmp_path / "good.png", (40, 40))
    (root / "bad").mkdir()
    (root / "bad" / "truncated.png").write_bytes(good.read_bytes()[:200])
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "text.png").write_text("not an image\n")
    (root / "notes.txt").write_text("not looked at")
    return root


def run(ck, src, out, *extra) -> int:
    return main([str(src), "--name", "cyc", "--checkpoints_dir", str(ck), "--output", str(out),
                 "--gpu_ids", "-1", "--no_progress", "--num_workers", "0", *extra])


def outputs(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}


def test_tree_is_mirrored_at_input_sizes_and_failures_are_listed(ck, tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(ck, tree, out, "--html", "--batch_size", "2", "--num_workers", "1") == 1
    files = outputs(out)
    expected = {"top.png": (53, 37), "a/b/deep.jpg": (40, 32), "a/gray.png": (33, 29),
                "a/sixteen.png": (30, 20), "phone.jpg": (24, 40), "c/x.webp": (36, 28),
                "c/x.bmp": (36, 28), "c/x.tif": (36, 28), "<script>x.png": (16, 16)}
    for name, size in expected.items():
        with Image.open(files[name]) as img:
            assert (img.size, img.mode) == (size, "RGB"), name
    assert set(files) == set(expected) | {"failed.txt", "index.html"}     # nothing else, no temp files
    lines = (out / "failed.txt").read_text().splitlines()
    failed = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in lines}
    assert set(failed) == {"truncated.png", "empty.jpg", "text.png"}
    assert "not a recognised image format" in failed["empty.jpg"]
    assert "translated 9, skipped 0, failed 3" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "&lt;script&gt;x.png" in page and "<script>x" not in page
    assert "%3Cscript%3Ex.png" in page  # the picture's address is percent-encoded


def test_sixteen_bit_is_scaled_not_clipped(tree):
    index, x, error = DecodeDataset([str(tree / "a" / "sixteen.png")], 3)[0]
    assert error is None and x.shape == (3, 20, 30)
    assert x.min() == -1 and x.max() == 1 and (x > 0).float().mean() > 0.4


def test_one_channel_run_and_save_format(ck, tree, tmp_path):
    out = tmp_path / "out"
    argv = [str(tree / "a"), "--name", "gray", "--checkpoints_dir", str(ck), "--output", str(out),
            "--gpu_ids", "-1", "--no_progress", "--num_workers", "0", "--save_format", "png"]
    assert main(argv) == 0
    with Image.open(out / "b" / "deep.png") as img:
        assert img.mode == "L" and img.size == (40, 32)
    assert main(argv + ["--direction", "BtoA"]) == 2  # pix2pix has no B -> A generator


def test_skip_existing_resumes_without_rewriting(ck, tree, tmp_path):
    out = tmp_path / "out"
    run(ck, tree, out)
    first = {name: p.stat().st_mtime_ns for name, p in outputs(out).items() if name != "failed.txt"}
    (out / "top.png").unlink()
    (out / ".top.png.k2j4x1.tmp").write_bytes(b"half")   # as a killed run leaves it
    assert run(ck, tree, out, "--skip_existing") == 1   # the bad files fail again
    again = outputs(out)
    assert "top.png" in again and ".top.png.k2j4x1.tmp" not in again
    assert all(again[n].stat().st_mtime_ns == t for n, t in first.items() if n != "top.png")


def test_symlinks_out_of_the_input_are_skipped(ck, tmp_path, capsys):
    src, outside = tmp_path / "in", tmp_path / "elsewhere"
    image(src / "ok.png", (20, 20))
    image(outside / "secret.png", (20, 20))
    os.symlink(outside / "secret.png", src / "link.png")
    os.symlink(outside, src / "linked_dir")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "sub")       # an output folder that leads out of OUTDIR
    image(src / "sub" / "escape.png", (20, 20))
    assert run(ck, src, out) == 0
    text = capsys.readouterr().out
    assert "link.png: symlink points outside the input folder" in text
    assert "linked_dir: folder symlink points outside" in text
    assert "escape.png: its output" in text
    assert sorted(outputs(out)) == ["ok.png"] and sorted(os.listdir(outside)) == ["secret.png"]


def test_batches_give_the_same_outputs_as_single_images(ck, tmp_path):
    src = tmp_path / "in"
    for i in range(5):
        image(src / f"{i}.png", (36, 28) if i != 2 else (20, 24), seed=i)
    run(ck, src, tmp_path / "one", "--batch_size", "1")
    run(ck, src, tmp_path / "three", "--batch_size", "3", "--num_workers", "1")
    for i in range(5):
        a = np.asarray(Image.open(tmp_path / "one" / f"{i}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "three" / f"{i}.png"), dtype=int)
        assert np.abs(a - b).max() <= 1  # float summation order may move a value across .5


def test_resize_keeps_the_classic_square_output_and_tiles_keep_sizes(ck, tree, tmp_path):
    run(ck, tree / "c", tmp_path / "sq", "--preprocess", "resize", "--load_size", "24", "--batch_size", "3")
    assert sorted(Image.open(p).size for p in (tmp_path / "sq").rglob("x.*")) == [(24, 24)] * 3
    assert run(ck, tree / "a", tmp_path / "tiled", "--tile", "16", "--tile_overlap", "8") == 0
    with Image.open(tmp_path / "tiled" / "gray.png") as img:
        assert img.size == (33, 29)
    assert run(ck, tree / "a", tmp_path / "x", "--tile", "18") == 2  # not a multiple of 4


def test_a_failed_write_leaves_no_file_and_is_reported(ck, tree, tmp_path, monkeypatch):
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("top.png"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    out = tmp_path / "out"
    assert run(ck, tree, out, "--num_writers", "3") == 1
    failed = (out / "failed.txt").read_text()
    assert "top.png\tcannot write" in failed and "No space left" in failed
    assert not (out / "top.png").exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # temporary files removed


def test_benchmark_times_both_paths_on_the_same_files(ck, tmp_path):
    src = tmp_path / "in"
    for i in range(3):
        image(src / f"{i}.jpg", (32, 32), seed=i)
    gen = load_run_generator(str(ck), "cyc").module
    opts = FolderOptions(str(src), str(tmp_path / "out"), batch_size=2, num_workers=0, progress=False)
    result = benchmark(gen, opts, 3, channels_last=True)
    assert result["images"] == 3 and result["failed"] == 0
    assert result["speedup"] == pytest.approx(result["fast_images_per_s"] / result["naive_images_per_s"])
    for kind in ("naive", "fast"):
        assert sorted(p.name for p in (tmp_path / "out" / kind).iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_benchmark_of_a_folder_of_outside_symlinks_says_why_nothing_is_left(ck, tmp_path):
    """A folder of links to a dataset elsewhere is skipped (links out of DIR are not followed): the
    benchmark's error must say so, not just that there are no images."""
    image(tmp_path / "data" / "a.jpg", (32, 32), seed=0)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").symlink_to(tmp_path / "data" / "a.jpg")
    gen = load_run_generator(str(ck), "cyc").module
    opts = FolderOptions(str(tmp_path / "in"), str(tmp_path / "out"), num_workers=0, progress=False)
    with pytest.raises(FolderError, match="1 skipped, e.g. .*a.jpg: symlink points outside the input folder"):
        benchmark(gen, opts, 3)


def conv_net(norm: str, gain: float = 0.1) -> torch.nn.Module:
    torch.manual_seed(0)
    g = build_generator("resnet_6blocks", in_channels=3, out_channels=3, base_channels=4, norm=norm)
    g = init_weights(g, "normal", gain)   # 0.1: outputs of order 1, like a trained net
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return g.eval()


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_tiles_match_the_whole_image_without_instance_norm(norm):
    g, x = conv_net(norm), torch.rand(1, 3, 203, 230) * 2 - 1
    with torch.inference_mode():
        whole, tiled = translate_padded(g, x, 4), translate_tiled(g, x, 4, 128, 64)
    assert tiled.shape == whole.shape == (1, 3, 203, 230)
    assert whole.std() > 0.1   # not a near-constant output that would match trivially
    diff = (tiled - whole).abs()
    assert diff.mean() < 2e-3 and diff.max() < 0.05  # 0.05 is 6 levels of 255


def test_tiles_blend_without_seams_under_instance_norm():
    # Each tile is normalised with its own statistics, so tiles disagree; a seam is a jump
    # that runs down the whole column, which the column profile (the mean over rows) keeps
    # while the generator's texture averages out.
    g = conv_net("instance", gain=0.02)  # the training init
    h, w = 128, 256
    torch.manual_seed(1)   # left-to-right ramps: every tile sees other statistics
    ramp = torch.linspace(-1, 1, w).expand(3, 3, h, w)
    x = (0.7 * ramp + 0.3 * (F.interpolate(torch.rand(3, 3, 3, 5), size=(h, w), mode="bicubic") * 2 - 1))

    def border_ratio(overlap: int) -> float:
        with torch.inference_mode():
            y = translate_tiled(g, x.clamp(-1, 1), 4, 64, overlap)
        profile = y.mean(dim=(1, 2))                          # N x W
        grad = (profile[:, 1:] - profile[:, :-1]).abs().mean(0)  # column c -> c + 1
        starts = tile_starts(w, 64, overlap, 4)
        borders = sorted(set(starts[1:]) | {s + 64 for s in starts[:-1]})
        inside = torch.ones_like(grad, dtype=torch.bool)
        for b in borders:
            inside[b - 3:b + 2] = False
        return (grad[[b - 1 for b in borders]].mean() / grad[inside].mean()).item()

    assert border_ratio(0) > 1.4      # butted tiles: the metric sees the seams
    assert border_ratio(32) < 1.0     # blended tiles: across borders as smooth as inside


def test_tiling_bounds_the_generator_memory_by_the_tile():
    class Probe(torch.nn.Module):
        size_multiple = 4

        def __init__(self):
            super().__init__()
            self.conv, self.largest = torch.nn.Conv2d(3, 3, 3, padding=1), 0

        def forward(self, x):
            self.largest = max(self.largest, x.numel())
            return torch.tanh(self.conv(x))

    probe = Probe()
    whole_1k = Runner(probe)
    whole_1k(torch.zeros(1, 3, 1024, 1024))
    assert probe.largest == 3 * 1024 * 1024
    probe.largest = 0
    out = Runner(probe, tile=512, tile_overlap=64)(torch.zeros(1, 3, 4096, 4096))
    assert out.shape == (1, 3, 4096, 4096)
    # Every activation of the generator is as large as for one 512 x 512 tile,
    # a quarter of a 1024 x 1024 pass; only the input, output and weight planes are image-sized.
    assert probe.largest == 3 * 512 * 512
