"""Ctrl-C and SIGTERM sent as a terminal, `timeout` or SLURM send them: to the whole process group
of a real run with 2 DataLoader workers.  Training saves the current iteration and resumes from it;
folder translation stops with its summary and resumes with --skip_existing; no traceback anywhere."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from imaging import make_paired, random_image
from processes import children
from translate import checkpoint as ckpt

ROOT = Path(__file__).resolve().parent.parent
# PYTHONPATH: `python -m translate` in another folder must import this checkout, not an installed copy.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
TINY = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "instance", "--ngf", "8", "--ndf", "8",
        "--load_size", "32", "--crop_size", "32", "--display_id", "0", "--gpu_ids", "-1", "--num_threads", "2",
        "--print_freq", "1", "--n_epochs", "1000", "--n_epochs_decay", "0", "--save_epoch_freq", "1000000"]


class Run:
    """A command in its own process group (as a shell starts a job), output to files."""

    def __init__(self, tmp_path: Path, argv: list[str], tag: str):
        self.out, self.err = tmp_path / f"{tag}.out", tmp_path / f"{tag}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, env=ENV,
                                         cwd=tmp_path, start_new_session=True)

    def signal_group(self, sig) -> None:
        os.killpg(self.proc.pid, sig)

    def wait(self, timeout=120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"did not stop in {timeout} s:\n{self.text()}") from None

    def text(self) -> str:
        return self.out.read_text() + "\n--- stderr ---\n" + self.err.read_text()

    def wait_until(self, condition, what: str, timeout=120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before {what}:\n{self.text()}")
            time.sleep(0.05)
        os.killpg(self.proc.pid, signal.SIGKILL)
        raise AssertionError(f"no {what} in {timeout} s:\n{self.text()}")


def _steps_logged(run_dir: Path) -> int:
    log = run_dir / "loss_log.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _train(tmp_path, *extra, tag="train"):
    argv = [str(ROOT / "train.py"), "--dataroot", str(tmp_path / "data"), "--name", "sig",
            "--checkpoints_dir", str(tmp_path / "ck"), *TINY, *extra]
    return Run(tmp_path, argv, tag)


def _assert_clean(run: Run) -> None:
    err = run.err.read_text()
    assert "Traceback" not in err and "exited unexpectedly" not in err, run.text()


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,to_group", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, True),
                                               pytest.param(signal.SIGTERM, 143, False, marks=pytest.mark.slow)])
def test_training_saves_the_current_iteration_and_resumes(tmp_path, capsys, sig, code, to_group):
    make_paired(tmp_path / "data", n=6)
    run_dir = tmp_path / "ck" / "sig"
    run = _train(tmp_path, "--save_latest_freq", "2")   # periodic saves every 2 iterations
    run.wait_until(lambda: _steps_logged(run_dir) >= 3, "3 training steps")
    run.signal_group(sig) if to_group else run.proc.send_signal(sig)
    assert run.wait() == code, run.text()
    _assert_clean(run)
    out = run.out.read_text()
    assert f"stopped by {signal.Signals(sig).name}" in out and "saved" in out and "--continue_train" in out
    state = ckpt.load_training_state(ckpt.find_checkpoint(run_dir, "latest"))
    steps = _steps_logged(run_dir)
    assert state["steps"] == steps >= 3, "ckpt_latest is not the iteration training had reached"
    assert not (run_dir / "train.lock").exists()
    if sig == signal.SIGINT:   # the run goes on from exactly there (in this process: no second start-up)
        import train as train_entry
        argv = ["--dataroot", str(tmp_path / "data"), "--name", "sig", "--checkpoints_dir", str(tmp_path / "ck"),
                *TINY, "--continue_train", "--max_iters", str(steps + 1), "--num_threads", "0"]
        assert train_entry.main(argv) == 0
        assert f"iteration {state['total_iters']}" in capsys.readouterr().out
        assert ckpt.load_training_state(ckpt.find_checkpoint(run_dir, "latest"))["steps"] == steps + 1


@pytest.mark.slow
def test_a_second_ctrl_c_does_not_break_the_save(tmp_path):
    make_paired(tmp_path / "data", n=6)
    run_dir = tmp_path / "ck" / "sig"
    # Wider nets: a save that takes long enough for the repeated signals to land in it.
    run = _train(tmp_path, "--save_latest_freq", "1000000", "--ngf", "48", "--ndf", "48")
    run.wait_until(lambda: _steps_logged(run_dir) >= 2, "2 training steps")
    run.signal_group(signal.SIGINT)
    sent = 1
    while run.proc.poll() is None and sent < 200:   # keep pressing Ctrl-C until it has exited
        time.sleep(0.005)
        if run.proc.poll() is None:
            run.signal_group(signal.SIGINT)
            sent += 1
    assert run.wait() == 130, run.text()
    _assert_clean(run)
    assert sent > 1, "the run exited before a second signal could be sent"
    assert "still saving" in run.err.read_text(), run.text()
    found = ckpt.find_checkpoint(run_dir, "latest")
    weights, _ = ckpt.load_checkpoint(found)
    assert "gen_ab" in weights and ckpt.load_training_state(found)["steps"] == _steps_logged(run_dir)
    leftovers = [p.name for p in run_dir.iterdir() if p.name.startswith(".") or p.name.endswith(".old")]
    assert not leftovers and not (run_dir / "train.lock").exists(), leftovers


def test_ctrl_c_during_start_up_exits_quietly(tmp_path):
    make_paired(tmp_path / "data", n=6)
    run = _train(tmp_path)
    time.sleep(0.5)   # importing torch
    run.signal_group(signal.SIGINT)
    assert run.wait() == 130, run.text()
    _assert_clean(run)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A tiny saved run, as test_translate_folder.py makes them (no training needed)."""
    from options import parse_train_options
    from translate.networks import build_networks
    ck = tmp_path_factory.mktemp("ck")
    cfg = parse_train_options(["--name", "tiny", "--checkpoints_dir", str(ck), "--model", "cycle_gan",
                               "--netG", "resnet_6blocks", "--ngf", "4", "--crop_size", "32", "--load_size", "32",
                               "--display_id", "0", "--gpu_ids", "-1"])
    nets = build_networks("cycle_gan", cfg.net, with_discriminators=False)
    ckpt.save_checkpoint(ck / "tiny", "latest", dict(nets.items()), cfg.to_dict(), model="cycle_gan")
    return ck


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.slow
def test_folder_translation_stops_with_its_summary_and_resumes(tmp_path, small_run, sig, code):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    n = 400
    for i in range(n):
        random_image(48, i).save(src / f"{i:03d}.png")
    (src / "!broken.png").write_bytes(b"not an image")   # sorts first: failed before the signal
    argv = ["-m", "translate", str(src), "--name", "tiny", "--checkpoints_dir", str(small_run),
            "--output", str(out), "--gpu_ids", "-1", "--num_workers", "2", "--no_progress"]
    run = Run(tmp_path, argv, "folder")
    run.wait_until(lambda: out.is_dir() and len(list(out.glob("*.png"))) >= 5, "5 translated images")
    run.signal_group(sig)
    assert run.wait() == code, run.text()
    _assert_clean(run)
    text = run.text()
    done = len(list(out.glob("*.png")))
    assert done < n, "finished before the signal: make the folder larger"
    assert f"{n - done} image(s) not translated yet" in text, text
    assert f"stopped by {signal.Signals(sig).name}" in text and "--skip_existing" in text, text
    assert f"translated {done}," in text, text
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a half-written file was left"
    assert "!broken.png" in (out / "failed.txt").read_text()   # the failures so far are listed
    if sig == signal.SIGINT:
        again = Run(tmp_path, argv + ["--skip_existing", "--num_workers", "0"], "again")
        assert again.wait() == 1, again.text()   # 1: broken.png fails
        assert len(list(out.glob("*.png"))) == n
        assert "!broken.png" in (out / "failed.txt").read_text()


@pytest.mark.slow
def test_test_py_stops_with_the_results_page_so_far(tmp_path, small_run):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(300):
        random_image(32, i).save(src / f"{i:03d}.png")
    argv = [str(ROOT / "test.py"), "--dataroot", str(src), "--name", "tiny", "--checkpoints_dir", str(small_run),
            "--results_dir", str(tmp_path / "res"), "--model", "test", "--model_suffix", "_A",
            "--netG", "resnet_6blocks", "--ngf", "4", "--load_size", "32", "--crop_size", "32",
            "--num_test", "100000", "--num_threads", "2", "--gpu_ids", "-1"]
    run = Run(tmp_path, argv, "test")
    images = tmp_path / "res" / "tiny" / "test_latest" / "images"
    run.wait_until(lambda: images.is_dir() and len(list(images.glob("*.png"))) >= 10, "10 written images")
    run.signal_group(signal.SIGINT)
    assert run.wait() == 130, run.text()
    _assert_clean(run)
    out = run.out.read_text()
    assert "Stopped by SIGINT after" in out and "of 300 images" in out, run.text()
    page = (images.parent / "index.html").read_text()
    written = sorted(images.glob("*_fake.png"))
    assert 0 < len(written) < 300 and all(p.name in page for p in written)
    assert not [p for p in images.iterdir() if p.name.startswith(".")], "a half-written file was left"


# 1 s: during start-up; 4-7 s: inside torch.export (its lazy imports once turned a signal there
# into "exporting as onnx failed ... torch._dynamo has no attribute 'exc'", exit 1).
@pytest.mark.parametrize("delay", [1.0] + [pytest.param(d, marks=pytest.mark.slow) for d in (4.0, 5.5, 7.0)])
def test_export_stops_without_leaving_a_file(tmp_path, small_run, delay):
    output = tmp_path / "out" / "g.onnx"
    argv = ["-m", "translate.export", "--name", "tiny", "--checkpoints_dir", str(small_run),
            "--format", "onnx", "--output", str(output)]
    run = Run(tmp_path, argv, "export")
    # 1 s: in the imports (about 3 s); 6 s: in the ONNX export (10-30 s on the shared 2-core machine).
    time.sleep(delay)
    if run.proc.poll() is not None:
        pytest.skip("the export finished before the signal")
    run.signal_group(signal.SIGTERM)
    code = run.wait()
    _assert_clean(run)
    if code == 0:
        # The signal came after the export had finished and checked its file (script_main ignores
        # signals once main() returned): a finished, complete file and nothing else is right then.
        assert "wrote" in run.out.read_text() and "SIGTERM" not in run.err.read_text(), run.text()
        onnx.checker.check_model(onnx.load(str(output)))
        assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
        return
    assert code == 143, run.text()
    err = run.err.read_text()
    assert "SIGTERM" in err
    if output.exists() and "no file will be kept" not in err:
        # The signal came between the export's checked rename and main()'s return: the file is whole.
        onnx.checker.check_model(onnx.load(str(output)))
        assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
        return
    assert not output.exists() and not (output.parent.exists() and any(output.parent.iterdir()))


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [False, True])
def test_two_processes_agree_on_the_step_to_stop_at(tmp_path, to_group):
    """SIGTERM to rank 1 only: both ranks stop at the same step (else save()'s barrier would hang).
    SIGINT to the group (a terminal's Ctrl-C): the launcher passes a SIGTERM on, the ranks save once."""
    import socket
    make_paired(tmp_path / "data", n=8)
    run_dir = tmp_path / "ck" / "sig"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
            str(ROOT / "train.py"), "--dataroot", str(tmp_path / "data"), "--name", "sig",
            "--checkpoints_dir", str(tmp_path / "ck"), *TINY, "--num_threads", "1", "--save_latest_freq", "1000000"]
    run = Run(tmp_path, argv, "ddp")
    run.wait_until(lambda: _steps_logged(run_dir) >= 3, "3 training steps", timeout=240)
    rank1 = [p for p in children(run.proc.pid) if _rank_of(p) == 1]
    assert rank1, "rank 1 not found"
    if to_group:
        run.signal_group(signal.SIGINT)
    else:
        os.kill(rank1[0], signal.SIGTERM)
    run.wait(timeout=120)   # no deadlock; the launcher reports the ranks' exit codes as a failure
    text = run.text()
    name, code = ("SIGINT", 130) if to_group else ("SIGTERM", 143)
    assert f"stopped by {name}" in text and "saved" in text, text
    assert text.count(f"exitcode  : {code}") == 2 or to_group, text   # both ranks stopped cleanly
    state = ckpt.load_training_state(ckpt.find_checkpoint(run_dir, "latest"))
    assert state["steps"] == _steps_logged(run_dir) >= 3
    assert not (run_dir / "train.lock").exists()
