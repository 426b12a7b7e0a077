"""scripts/gpu_check.sh --dry_run, for real on the CPU: one table with every row, numbers that
parse, and a failing part shown as FAILED with its error while the other parts still run."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402
from processes import children  # noqa: E402

NUMBER = r"\d+(?:\.\d+)?"


def run_check(*argv: str, timeout: float = 240) -> tuple[int, str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(SCRIPT), "--dry_run", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
    return done.returncode, done.stdout, done.stderr


def table(stdout: str) -> list[dict]:
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == gpu_check.COLUMNS
    assert set(lines[1]) <= {"|", "-"}
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.mark.slow
def test_dry_run_prints_every_row_with_numbers_that_parse(tmp_path):
    code, out, err = run_check("--out", str(tmp_path / "table.md"))
    assert code == 0, out + err[-3000:]
    rows = table(out)
    labels = [r["configuration"] for r in rows if r["part"] == "bench"]
    assert labels == [label for label, _argv, _compiled in gpu_check.bench_rows(dry_run=True)]
    assert len(labels) == 16 and len(set(labels)) == 16
    assert [r["part"] for r in rows] == ["tests"] + ["l1"] * 2 + ["bench"] * 16
    assert all(r["status"] == "ok" for r in rows), rows
    tests = rows[0]
    # No GPU here: every cuda test is collected and skipped, none passes or fails.
    counts = re.fullmatch(r"(\d+) passed, (\d+) failed, (\d+) skipped", tests["result"])
    assert counts and int(counts[1]) == int(counts[2]) == 0 and int(counts[3]) >= 1
    for r in rows[1:3]:
        assert re.match(rf"val L1 {NUMBER}, logged l1 {NUMBER}", r["result"]), r
        assert 0 < float(r["result"].split()[2].rstrip(",")) < 2
    for r in rows[3:]:
        for column in ("result", "classic way"):
            assert re.fullmatch(rf"{NUMBER} img/s", r[column]) and float(r[column].split()[0]) > 0, r
        assert re.fullmatch(rf"{NUMBER}x", r["speedup"]), r
        for column in ("peak MiB (growth)", "classic peak MiB (growth)"):
            assert re.fullmatch(rf"{NUMBER} \(-?{NUMBER}\)", r[column]), r
        assert re.fullmatch(NUMBER, r["s"]), r
    assert "train" in labels[0] and "fp32 eager" in labels[0] and "bf16 channels_last" in labels[1]
    total = re.search(rf"total: ({NUMBER}) s of a 450 s budget; 0 of 19 rows FAILED", out)
    assert total and float(total[1]) > 0
    assert (tmp_path / "table.md").read_text() == out


@pytest.mark.slow
def test_a_failing_part_is_a_failed_row_and_the_exit_status_says_so(tmp_path):
    missing = tmp_path / "no_facades_here"
    code, out, err = run_check("--parts", "tests", "l1", "--dataroot", str(missing))
    assert code == 1, out + err[-3000:]
    rows = table(out)
    assert [r["part"] for r in rows] == ["tests", "l1", "l1"]
    assert rows[0]["status"] == "ok"  # the other part still ran
    for r in rows[1:]:
        assert r["status"].startswith("FAILED") and str(missing) in r["status"] and "--dataroot" in r["status"]
    assert "2 of 3 rows FAILED" in out


def test_a_part_past_its_time_box_is_killed_and_reported(tmp_path):
    log_file = tmp_path / "part.log"
    code, _out = gpu_check.run_part([sys.executable, "-c", "import time; time.sleep(60)"], timeout=2,
                                    log_file=log_file)
    assert code is None
    assert gpu_check.failure(log_file, code, 2) == "FAILED: timed out after 2 s"
    assert gpu_check.failure(log_file, None, 0).startswith("FAILED: not started")


def test_the_failed_row_names_the_last_error_line(tmp_path):
    log_file = tmp_path / "part.log"
    code, out = gpu_check.run_part(
        [sys.executable, "-c", "import sys; print('working'); sys.exit('error: CUDA out of memory')"],
        timeout=30, log_file=log_file)
    assert code == 1
    assert gpu_check.failure(log_file, code, 30, out) == "FAILED (exit 1): error: CUDA out of memory"


def test_the_gpu_rows_are_the_issue_set_and_the_bench_accepts_every_one():
    from translate.bench.cli import build_parser
    rows = gpu_check.bench_rows(dry_run=False)
    parsed = [build_parser().parse_args(argv) for _label, argv, _compiled in rows]
    seen = {(a.command, a.model, a.netG, a.netD, a.crop_size, a.batch_size, a.mixed_precision, a.channels_last,
             a.compile) for a in parsed}
    nets = [("cycle_gan", "resnet_9blocks", "basic"), ("pix2pix", "unet_256", "basic")]
    assert seen == {(mode, *net, 256, batch, *config) for mode in ("train", "infer") for net in nets
                    for batch in (1, 8) for config in (("no", False, False), ("bf16", True, True))}
    assert all(a.device == "cuda" and a.baseline and a.json for a in parsed)
    assert [compiled for _l, _a, compiled in rows] == [a.compile for a in parsed]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_to_the_script_ends_the_running_part(tmp_path):
    """Each part runs in its own session (so a time box can end its whole group): a stopped
    script must end it too, or a benchmark would go on holding the GPU."""
    import signal
    import time
    proc = subprocess.Popen([str(SCRIPT), "--dry_run", "--parts", "bench", "--workdir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline, part = time.monotonic() + 60, []
    while not part and time.monotonic() < deadline:
        time.sleep(0.2)
        part = children(proc.pid)
    assert part, "the bench part never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.5)
    for pid in part:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
