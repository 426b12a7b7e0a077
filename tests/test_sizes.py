"""Odd image sizes: mixed sizes and aspect ratios train in every preprocess mode, tiny images
(1x1, 2x2, 1xN) never stop a training or a folder translation, and the image pool keeps
fakes of different sizes across a resume."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_entry
from datasets.transforms import PREPROCESS_MODES, Params, apply, output_size
from options import parse_train_options
from options.config import DataConfig
from translate import checkpoint as ckpt
from translate.__main__ import main as translate_main
from translate.checkpoint import save_checkpoint
from translate.training.image_pool import ImagePool
from translate.networks import build_networks
from translate.training.objective import Objective
from translate.inference.tiling import Runner
from translate.inference.folder import FolderOptions, translate_folder

# (width, height): square, tall, wide, a single pixel, a 2-pixel-wide strip.
MIXED = [(40, 40), (40, 72), (72, 40), (1, 1), (2, 9)]
TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
        "--display_id", "0", "--num_threads", "0", "--max_iters", "2", "--print_freq", "100",
        "--gpu_ids", "-1", "--norm", "instance"]


def picture(size: tuple[int, int], seed: int) -> Image.Image:
    w, h = size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def mixed_folder(root: Path, paired: bool) -> Path:
    """Aligned: root/train/i.png with A|B halves of each size; unaligned: trainA and trainB."""
    for i, (w, h) in enumerate(MIXED):
        if paired:
            both = Image.new("RGB", (2 * w, h))
            both.paste(picture((w, h), i), (0, 0))
            both.paste(picture((w, h), 100 + i), (w, 0))
            (root / "train").mkdir(parents=True, exist_ok=True)
            both.save(root / "train" / f"{i}.png")
        else:
            for side, seed in (("A", i), ("B", 100 + i)):
                (root / f"train{side}").mkdir(parents=True, exist_ok=True)
                # B gets the sizes in another order so that an item pairs different sizes.
                size = MIXED[(i + 2) % len(MIXED)] if side == "B" else (w, h)
                picture(size, seed).save(root / f"train{side}" / f"{i}.png")
    return root


def train_argv(tmp_path: Path, data: Path, paired: bool, *extra: str) -> list[str]:
    model = ["--model", "pix2pix", "--dataset_mode", "aligned"] if paired else ["--model", "cycle_gan"]
    return ["--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"),
            *model, *TINY, *extra]


# Modes whose output size follows the image: they cannot stack different sizes in one batch.
FREE_SIZE = ("scale_width", "none")


@pytest.mark.parametrize("paired", [True, False], ids=["paired", "unpaired"])
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
def test_mixed_sizes_train_and_checkpoint(tmp_path, capsys, preprocess, batch_size, paired):
    data = mixed_folder(tmp_path / "data", paired)
    argv = train_argv(tmp_path, data, paired, "--preprocess", preprocess, "--batch_size", str(batch_size))
    code = train_entry.main(argv)
    err = capsys.readouterr().err
    if batch_size > 1 and preprocess in FREE_SIZE:
        # Refused before any work, naming what to change; no traceback, no run folder.
        assert code == 1 and "Traceback" not in err
        assert "--batch_size 1" in err and "--preprocess" in err and "crop" in err, err
        assert not (tmp_path / "ck" / "run" / "ckpt_latest").exists()
        return
    assert code == 0, err
    weights, _ = ckpt.load_checkpoint(tmp_path / "ck" / "run" / "ckpt_latest")
    assert "gen_ab" in weights
    assert ckpt.load_training_state(tmp_path / "ck" / "run" / "ckpt_latest")["steps"] == 2


@pytest.mark.parametrize("preprocess, batch_size", [("none", 1), ("scale_width", 4), ("crop", 4)])
def test_paired_folders_of_mixed_sizes(tmp_path, capsys, preprocess, batch_size):
    """trainA/x.png pairs with trainB/x.png (B is resized to A's size)."""
    for i, size in enumerate(MIXED):
        for side in "AB":
            (tmp_path / "data" / f"train{side}").mkdir(parents=True, exist_ok=True)
            picture(size, i).save(tmp_path / "data" / f"train{side}" / f"{i}.png")
    argv = train_argv(tmp_path, tmp_path / "data", True, "--preprocess", preprocess,
                      "--batch_size", str(batch_size))
    argv[argv.index("aligned")] = "paired_folders"
    code = train_entry.main(argv)
    if preprocess in FREE_SIZE and batch_size > 1:
        assert code == 1 and "--batch_size 1" in capsys.readouterr().err
    else:
        assert code == 0, capsys.readouterr().err


def test_same_sized_images_still_batch_without_a_crop(tmp_path):
    """The start-up refusal is only for folders that really hold different sizes."""
    for i in range(4):
        for side in "AB":
            (tmp_path / "data" / f"train{side}").mkdir(parents=True, exist_ok=True)
            picture((36, 50), i).save(tmp_path / "data" / f"train{side}" / f"{i}.png")
    argv = train_argv(tmp_path, tmp_path / "data", False, "--preprocess", "scale_width", "--batch_size", "4")
    assert train_entry.main(argv) == 0


@pytest.mark.slow
def test_pool_of_mixed_sizes_survives_a_resume_bit_for_bit(tmp_path):
    """An epoch of scale_width over the mixed folder fills the pool with fakes of several
    sizes; the checkpoint keeps them, and 5 + 2 resumed iterations equal 7 straight ones."""
    data = mixed_folder(tmp_path / "data", paired=False)

    def train(name: str, iters: int, *extra: str) -> dict:
        argv = train_argv(tmp_path, data, False, "--preprocess", "scale_width", "--deterministic", *extra)
        argv[argv.index("--name") + 1], argv[argv.index("--max_iters") + 1] = name, str(iters)
        assert train_entry.main(argv) == 0
        return ckpt.load_checkpoint(tmp_path / "ck" / name / "ckpt_latest")[0]

    straight = train("straight", 7)
    train("resumed", 5)
    state = ckpt.load_training_state(tmp_path / "ck" / "resumed" / "ckpt_latest")
    shapes = {tuple(img.shape[-2:]) for img in state["pools"]["disc_b"]["images"]}
    assert len(shapes) > 1, shapes
    resumed = train("resumed", 7, "--continue_train")
    for net in straight:
        for key in straight[net]:
            assert torch.equal(straight[net][key], resumed[net][key]), f"{net}.{key} differs"


def test_gradient_penalty_takes_unpaired_items_of_two_sizes(tmp_path):
    """WGAN-GP interpolates real and fake: A and B of one item differ in size here."""
    data = mixed_folder(tmp_path / "data", paired=False)
    argv = train_argv(tmp_path, data, False, "--preprocess", "scale_width", "--gan_mode", "wgangp",
                      "--lambda_gp", "10")
    assert train_entry.main(argv) == 0


def test_cutmix_skips_a_real_and_a_fake_of_different_sizes():
    argv = ["--model", "cycle_gan", "--netG", "resnet_6blocks", "--netD", "unet", "--ngf", "4", "--ndf", "4",
            "--crop_size", "32", "--display_id", "0", "--gpu_ids", "-1", "--lambda_cutmix", "1"]
    cfg = parse_train_options(argv)
    objective = Objective("cycle_gan", build_networks("cycle_gan", cfg.net), cfg.loss)
    images = objective.generate({"A": torch.randn(1, 3, 32, 32), "B": torch.randn(1, 3, 48, 32)})
    torch.manual_seed(0)
    for _ in range(8):                    # after warm-up a CutMix step comes with probability 1/2
        total, _ = objective.discriminator_loss(images, step=10**6)
        assert torch.isfinite(total)


# ---- the pieces -------------------------------------------------------------------

def test_pool_returns_the_batch_shape_and_round_trips_mixed_sizes():
    pool = ImagePool(4, seed=1)
    for step in range(12):
        side = (8, 12, 16)[step % 3]
        batch = torch.randn(2, 3, side, side + 4)
        assert pool.query(batch).shape == batch.shape
    clone = ImagePool(4, seed=99)
    clone.load_state_dict(pool.state_dict())
    for step in range(12):
        batch = torch.randn(1, 3, (8, 12)[step % 2], 8)
        assert torch.equal(pool.query(batch), clone.query(batch))


def test_pool_loads_the_old_state_format_and_writes_it_for_one_size():
    old = ImagePool(3, seed=5)
    for _ in range(5):
        old.query(torch.randn(1, 3, 8, 8))
    state = old.state_dict()
    assert isinstance(state["images"], torch.Tensor) and state["images"].shape == (3, 3, 8, 8)
    new = ImagePool(3, seed=0)
    new.load_state_dict(state)
    batch = torch.randn(1, 3, 8, 8)
    assert torch.equal(old.query(batch), new.query(batch))


def data_cfg(preprocess: str, **kw) -> DataConfig:
    return DataConfig(dataroot=None, dataset_mode="single", preprocess=preprocess, load_size=36,
                      crop_size=32, size_multiple=4, **kw)


@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
@pytest.mark.parametrize("size", MIXED + [(192, 256), (256, 192)])
def test_every_mode_gives_sides_the_generator_takes(preprocess, size):
    cfg = data_cfg(preprocess, min_side=24)
    w, h = size
    out = apply(torch.rand(3, h, w), cfg, Params())
    oh, ow = out.shape[-2:]
    assert oh % 4 == 0 and ow % 4 == 0 and min(oh, ow) >= 24, (oh, ow)
    assert output_size(h, w, cfg) == (oh, ow)   # what the start-up check predicts from headers


def test_scale_width_rounds_to_the_multiple():
    # The 256 x 192 / 192 x 256 report: 341 rows are not a multiple of 4.
    cfg = DataConfig(dataroot=None, dataset_mode="single", preprocess="scale_width", load_size=256,
                     crop_size=256, size_multiple=4)
    assert apply(torch.rand(3, 256, 192), cfg, Params()).shape[-2:] == (340, 256)


# ---- folder translation -----------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    ck = tmp_path_factory.mktemp("checkpoints")
    cfg = parse_train_options(["--name", "cyc", "--checkpoints_dir", str(ck), "--model", "cycle_gan",
                               "--netG", "resnet_6blocks", "--ngf", "4", "--crop_size", "32",
                               "--load_size", "32", "--display_id", "0", "--gpu_ids", "-1"])
    nets = build_networks("cycle_gan", cfg.net, with_discriminators=False)
    save_checkpoint(ck / "cyc", "latest", dict(nets.items()), cfg.to_dict(), model="cycle_gan")
    return ck


@pytest.mark.parametrize("extra", [[], ["--batch_size", "3"], ["--tile", "16", "--tile_overlap", "4"],
                                   ["--preprocess", "scale_width", "--load_size", "2"]])
def test_tiny_images_are_translated_at_their_own_size(run_dir, tmp_path, capsys, extra):
    src = tmp_path / "in"
    src.mkdir()
    sizes = {"one.png": (1, 1), "two.png": (2, 2), "strip.png": (1, 7), "row.png": (7, 1), "ok.png": (20, 16)}
    for i, (name, size) in enumerate(sizes.items()):
        picture(size, i).save(src / name)
    out = tmp_path / "out"
    code = translate_main([str(src), "--name", "cyc", "--checkpoints_dir", str(run_dir), "--output", str(out),
                           "--gpu_ids", "-1", "--no_progress", "--num_workers", "0", *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "translated 5, skipped 0, failed 0" in printed.out
    if "--preprocess" in extra:
        return   # scale_width changes the size on purpose
    for name, size in sizes.items():
        with Image.open(out / name) as img:
            assert img.size == size, name


def test_an_inference_error_fails_that_file_only(tmp_path, capsys):
    """A network that cannot take 1x1 (instance norm after a stride-2 conv), run without any
    padding knowledge: the 1x1 file is listed with the reason, the others are written."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
                              torch.nn.InstanceNorm2d(4), torch.nn.Conv2d(4, 12, 1), torch.nn.PixelShuffle(2))
    src = tmp_path / "in"
    src.mkdir()
    for i, (name, size) in enumerate({"a.png": (1, 1), "b.png": (8, 6), "c.png": (10, 10)}.items()):
        picture(size, i).save(src / name)
    opts = FolderOptions(input_dir=str(src), output_dir=str(tmp_path / "out"), num_workers=0, progress=False)
    summary = translate_folder(Runner(net), opts, 3)
    assert summary.translated == 2
    assert [Path(p).name for p, _ in summary.failed] == ["a.png"]
    assert "Expected more than 1" in summary.failed[0][1]
    failed = (tmp_path / "out" / "failed.txt").read_text()
    assert failed.startswith(str(src / "a.png")) and "Expected more than 1" in failed
