"""`make demo`: train pix2pix briefly on the built-in toy data, translate its test split, show the page.

It also prints the mean L1 between output and ground truth on the test split
for the untrained and the trained generator, so you can see that it learned.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import test as test_entry  # noqa: E402
import train as train_entry  # noqa: E402

NAME = "demo_toy_pix2pix"
ITERS = 400
TRAIN = ["--model", "pix2pix", "--name", NAME, "--netG", "unet_64", "--ngf", "16", "--ndf", "16",
         "--norm", "instance", "--load_size", "72", "--crop_size", "64", "--batch_size", "4",
         "--lr", "0.0005", "--n_epochs", "100", "--n_epochs_decay", "0", "--max_iters", str(ITERS),
         "--display_id", "0", "--print_freq", "400", "--update_html_freq", "400", "--num_threads", "1",
         "--save_latest_freq", "1000000", "--save_epoch_freq", "1000",
         "--start_over"]   # each `make demo` trains afresh (train.py refuses to replace a run without it)
# The untrained generator's error, for comparison: one iteration at a learning rate too small to
# change anything (--lr must be > 0).
UNTRAINED = TRAIN + ["--max_iters", "1", "--lr", "1e-12", "--name", NAME + "_untrained"]
TEST = ["--model", "pix2pix", "--name", NAME, "--dataset_mode", "aligned", "--load_size", "64",
        "--crop_size", "64", "--eval", "--num_test", "30"]


def test_split_l1(results: Path) -> float:
    """Mean |fake_B - real_B| over the written test images, in [0, 1] pixel units."""
    import numpy as np
    from PIL import Image
    errors = []
    for fake in sorted((results / "images").glob("*_fake_B.png")):
        real = fake.with_name(fake.name.replace("_fake_B", "_real_B"))
        a = np.asarray(Image.open(fake), dtype=np.float32) / 255
        b = np.asarray(Image.open(real), dtype=np.float32) / 255
        errors.append(np.abs(a - b).mean())
    return float(np.mean(errors))


def main() -> int:
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    start = time.time()
    results = ROOT / "results" / NAME / "test_latest"
    if train_entry.main(UNTRAINED):
        return 1
    if test_entry.main([a if a != NAME else NAME + "_untrained" for a in TEST]):
        return 1
    before = test_split_l1(ROOT / "results" / (NAME + "_untrained") / "test_latest")
    if train_entry.main(TRAIN) or test_entry.main(TEST):
        return 1
    after = test_split_l1(results)
    print(f"\nmean L1 to the ground truth on the test split: untrained {before:.3f} -> trained {after:.3f}")
    print(f"demo finished in {(time.time() - start) / 60:.1f} min")
    print(f"Results page: {results / 'index.html'}")
    print(f"Training page: {ROOT / 'checkpoints' / NAME / 'web' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
