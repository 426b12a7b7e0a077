"""The CUDA paths on a real GPU: bf16/fp16 autocast (with fp16's grad scaler), channels_last,
torch.compile, fused Adam, cudnn.benchmark, pinned memory, and the benchmark's CUDA figures.

Every test here is marked ``cuda`` and skips where PyTorch sees no GPU, so the CPU suite
passes them by as skipped; ``pytest -m cuda`` (scripts/gpu_check.sh) runs exactly these.
Tiny networks (ngf/ndf 8, 32-64 px): each test takes seconds on a GPU, the compile one tens.
"""
import math

import pytest
import torch

from imaging import make_paired, make_unpaired
from options import parse_train_options
from translate.training.trainer import Trainer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _trainer(tmp_path, *extra: str, model: str = "pix2pix", net: str = "unet_64") -> Trainer:
    make = make_unpaired if model == "cycle_gan" else make_paired
    data = make(tmp_path / "data", n=2, size=64)
    return Trainer(parse_train_options([
        "--dataroot", str(data), "--name", "cuda", "--checkpoints_dir", str(tmp_path / "ck"),
        "--model", model, "--netG", net, "--ngf", "8", "--ndf", "8", "--load_size", "64",
        "--crop_size", "64", "--num_threads", "0", "--gpu_ids", "0", "--display_id", "0", "--no_html", *extra]))


def _finite_step(trainer: Trainer, batch: dict) -> dict:
    logs, _ = trainer.train_step(batch)
    assert logs, "the step was skipped as non-finite"
    values = {name: float(value) for name, value in logs.items()}
    assert all(math.isfinite(v) for v in values.values()), values
    return values


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step_on_the_gpu_changes_the_weights(tmp_path, precision):
    trainer = _trainer(tmp_path, "--mixed_precision", precision, "--channels_last")
    assert trainer.device.type == "cuda"
    before = {k: v.clone() for k, v in trainer.raw_nets.state_dict().items() if v.is_floating_point()}
    batch = next(iter(trainer.loader))
    for _ in range(2):
        _finite_step(trainer, batch)
    after = trainer.raw_nets.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no weight changed"
    # fp16 needs the grad scaler (Accelerate's); bf16 has fp32's range and runs without one.
    scaler = trainer.accelerator.scaler
    if precision == "fp16":
        assert scaler is not None and scaler.get_scale() > 0
    else:
        assert scaler is None


def test_gpu_training_uses_fused_adam_cudnn_benchmark_pinned_batches_and_channels_last(tmp_path):
    trainer = _trainer(tmp_path, "--channels_last")
    for opt in (trainer.opt_g, trainer.opt_d):
        assert all(group.get("fused") for group in opt.param_groups), "Adam is not the fused CUDA kernel"
    assert torch.backends.cudnn.benchmark
    batch = next(iter(trainer.loader))
    assert batch["A"].is_pinned(), "the loader does not pin host memory for the GPU copy"
    conv = next(m for m in trainer.raw_nets["gen_ab"].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    _finite_step(trainer, batch)


def test_compiled_step_matches_eager_in_fp32(tmp_path):
    """torch.compile changes the kernels, not the math: same first step as eager, within float error.
    pix2pix (two networks, the cheaper compilation) without dropout, whose random masks would differ."""
    eager = _trainer(tmp_path / "eager", "--seed", "3", "--no_dropout")
    compiled = _trainer(tmp_path / "compiled", "--seed", "3", "--no_dropout", "--compile")
    compiled.raw_nets.load_state_dict(eager.raw_nets.state_dict())
    batch = next(iter(eager.loader))
    ours, theirs = _finite_step(compiled, batch), _finite_step(eager, batch)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name] == pytest.approx(theirs[name], rel=2e-2, abs=1e-3), name


def test_the_benchmark_measures_cuda_memory_and_a_speedup(tmp_path):
    from translate.bench.cli import run_config
    from translate.bench.measure import Spec
    spec = Spec(mode="infer", model="pix2pix", netG="unet_64", ngf=8, ndf=8, crop_size=64, batch_size=2,
                mixed_precision="bf16", channels_last=True, device="cuda")
    row = run_config(spec, iters=3, warmup=1, baseline=True, peak_seconds=0.2)
    assert row["device"] == "cuda" and row["peak_mem_kind"] == "cuda_max_allocated"
    assert row["conv_dtype"] == "bfloat16"
    assert row["peak_mem_bytes"] > 0 and row["images_per_s"] > 0 and row["speedup"] > 0
