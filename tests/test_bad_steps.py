"""Non-finite losses skip the step, are counted, and stop training after --max_bad_steps."""
import pytest
import torch

from imaging import make_paired
from options import parse_train_options
from translate.training.trainer import Trainer


def test_nan_batches_are_skipped_then_training_stops(tmp_path):
    data = make_paired(tmp_path / "data", n=2)
    cfg = parse_train_options(["--dataroot", str(data), "--name", "nan", "--checkpoints_dir", str(tmp_path),
                               "--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "instance",
                               "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
                               "--num_threads", "0", "--gpu_ids", "-1", "--max_bad_steps", "3",
                               "--display_id", "0"])
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.raw_nets.state_dict().items()}
    good = next(iter(trainer.loader))
    poisoned = {**good, "A": torch.full_like(good["A"], float("nan"))}
    for expected in (1, 2):
        logs, _ = trainer.train_step(poisoned)
        assert logs == {} and trainer.bad_steps == expected
    after = trainer.raw_nets.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "a skipped step changed the weights"
    logs, _ = trainer.train_step(good)  # a good step resets the count
    assert logs and trainer.bad_steps == 0
    for _ in range(2):
        trainer.train_step(poisoned)
    with pytest.raises(FloatingPointError, match="--max_bad_steps|non-finite"):
        trainer.train_step(poisoned)
