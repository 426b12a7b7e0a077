"""Files follow the umask as open()/mkdir do; output places that cannot be written fail at start-up.

Real runs of train.py, test.py and ``python -m translate`` under umask 022 and
002, then every file and folder they made is checked.  The tests run as root on
the CI machine, where permission bits do not stop writes, so "cannot be
written" is made real by a file in the way or by a place where even root cannot
create a file (/proc).
"""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from imaging import make_paired
from translate import files

ROOT = Path(__file__).resolve().parent.parent
NET = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8",
       "--load_size", "32", "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1"]


def _run(*argv, umask=0o022, timeout=180):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout, preexec_fn=lambda: os.umask(umask))
    return done.returncode, done.stdout + done.stderr


def _modes(top: Path) -> dict[str, str]:
    """Every path below ``top`` (itself included) -> its permission bits in octal."""
    found = {".": oct(stat.S_IMODE(top.stat().st_mode))}
    for path in top.rglob("*"):
        found[str(path.relative_to(top))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _expect_umask(top: Path, umask: int) -> None:
    want_file, want_dir = oct(0o666 & ~umask), oct(0o777 & ~umask)
    wrong = {p: m for p, m in _modes(top).items()
             if m != (want_dir if (top / p).is_dir() else want_file)}
    assert not wrong, f"under umask {umask:03o} expected files {want_file}, folders {want_dir}: {wrong}"


@pytest.mark.parametrize("umask", [0o022, 0o002])
@pytest.mark.slow
def test_everything_a_run_writes_follows_the_umask(tmp_path, umask):
    data = make_paired(tmp_path / "data", n=2)
    ck, results = tmp_path / "ck", tmp_path / "results"
    rc, out = _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                   "--display_id", "0", "--max_iters", "2", "--save_latest_freq", "1", "--save_by_iter",
                   umask=umask)
    assert rc == 0, out
    names = {p.name for p in (ck / "run").iterdir()}
    assert {"ckpt_latest", "ckpt_iter_1", "train_opt.txt", "train_config.json", "latest_net_G.pth",
            "loss_log.txt", "web"} <= names, names
    rc, out = _run(ROOT / "test.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                   "--results_dir", results, umask=umask)
    assert rc == 0, out
    _expect_umask(ck, umask)
    _expect_umask(results, umask)
    if umask == 0o002:   # the folder translation writes from threads: the same modes
        out_dir = tmp_path / "translated"
        rc, out = _run("-m", "translate", data / "test", "--name", "run", "--checkpoints_dir", ck,
                       "--output", out_dir, "--num_workers", "0", "--html", umask=umask)
        assert rc == 0, out
        _expect_umask(out_dir, umask)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_the_atomic_writers_give_open_and_mkdirs_modes(tmp_path, umask):
    before = os.umask(umask)
    try:
        files.write_text(tmp_path / "a" / "text.txt", "x")
        files.write_bytes(tmp_path / "a" / "data.bin", b"x")
        files.write_with(tmp_path / "a" / "w.safetensors",      # safetensors alone makes 0600
                         lambda p: save_file({"t": torch.zeros(2)}, p))
        with files.staged_directory(tmp_path / "a" / "staged") as staging:
            (staging / "inside.txt").write_text("y")
        with open(tmp_path / "a" / "plain.txt", "w"):
            pass
    finally:
        os.umask(before)
    modes = _modes(tmp_path / "a")
    assert modes.pop("plain.txt") == oct(0o666 & ~umask)
    _expect_umask(tmp_path / "a", umask)
    assert not [p for p in modes if p != "." and (p.startswith(".") or "/." in p)], modes  # no temp names


def test_an_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path):
    files.write_text(tmp_path / "f.txt", "old")

    def fail(path):
        Path(path).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_with(tmp_path / "f.txt", fail)
    assert (tmp_path / "f.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# ---- output places that cannot be written ------------------------------------------

def _assert_clean_refusal(rc, out, flag):
    assert rc == 2, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and flag in errors[0], out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("perm")
    data = make_paired(base / "data", n=2)
    rc, out = _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", base / "ck",
                   *NET, "--display_id", "0", "--max_iters", "1")
    assert rc == 0, out
    return data, base / "ck"


@pytest.mark.slow
def test_train_refuses_a_checkpoints_dir_that_is_a_file_before_any_work(tmp_path):
    data = make_paired(tmp_path / "data", n=2)
    (tmp_path / "afile").write_text("")
    for ck in (tmp_path / "afile", tmp_path / "afile" / "below"):
        rc, out = _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                       "--display_id", "0", "--max_iters", "1")
        _assert_clean_refusal(rc, out, "--checkpoints_dir")
        assert "is a file" in out and "epoch" not in out   # refused before training started


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.slow
def test_train_refuses_a_place_where_no_file_can_be_created(tmp_path):
    data = make_paired(tmp_path / "data", n=2)
    rc, out = _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", "/proc",
                   *NET, "--display_id", "0", "--max_iters", "1")
    _assert_clean_refusal(rc, out, "--checkpoints_dir")
    assert "cannot write there" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_refuses_a_read_only_folder(tmp_path):
    data = make_paired(tmp_path / "data", n=2)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    rc, out = _run(ROOT / "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", locked,
                   *NET, "--display_id", "0", "--max_iters", "1")
    _assert_clean_refusal(rc, out, "--checkpoints_dir")


@pytest.mark.slow
def test_test_py_refuses_a_results_dir_that_cannot_be_written(small_run, tmp_path):
    data, ck = small_run
    (tmp_path / "afile").write_text("")
    for results in (tmp_path / "afile", "/proc"):
        rc, out = _run(ROOT / "test.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ck, *NET,
                       "--results_dir", results)
        _assert_clean_refusal(rc, out, "--results_dir")
        assert "Translated" not in out


@pytest.mark.slow
def test_translate_and_export_refuse_outputs_that_cannot_be_written(small_run, tmp_path, capsys):
    data, ck = small_run
    (tmp_path / "afile").write_text("")
    rc, out = _run("-m", "translate", data / "test", "--name", "run", "--checkpoints_dir", ck,
                   "--output", tmp_path / "afile", "--num_workers", "0")
    _assert_clean_refusal(rc, out, "--output")
    assert "translating with" not in out
    from translate.inference.export import main as export_main   # in process: an escaping exception fails the test
    for output in (tmp_path, tmp_path / "afile" / "g.pt", "/proc/g.pt"):   # a folder, under a file, /proc
        rc = export_main(["--name", "run", "--checkpoints_dir", str(ck), "--format", "torchscript",
                          "--output", str(output)])
        _assert_clean_refusal(rc, capsys.readouterr().err, "--output")


def test_the_writability_check_creates_nothing(tmp_path):
    files.check_writable_folder(tmp_path / "new" / "deeper", "--x")
    files.check_writable_file(tmp_path / "new.onnx", "--x")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(files.OutputError, match="--x .* is a folder"):
        files.check_writable_file(tmp_path, "--x")
