"""Resuming a run: the training state a checkpoint keeps, and loading it back (--continue_train).

Functions of the Trainer: what is saved next to the weights and how it
is restored, kept apart from the loop.  Restoring every piece (optimizers, schedulers, image
pools, RNG streams, counters, fp16's loss scale) is what makes a resume bit-exact
(tests/test_resume.py).
"""
from __future__ import annotations

from translate import checkpoint as ckpt
from translate.training.rng_state import capture_rng, restore_rng


def training_state(trainer) -> dict:
    """Everything but the weights that a bit-exact resume needs (state.pt; weights_only-loadable)."""
    return {
        "epoch": trainer.epoch, "epoch_iter": trainer.epoch_iter, "total_iters": trainer.total_iters,
        "steps": trainer.steps, "opt_g": trainer.opt_g.state_dict(), "opt_d": trainer.opt_d.state_dict(),
        "sched_g": trainer.sched_g.state_dict(), "sched_d": trainer.sched_d.state_dict(),
        "pools": {d: p.state_dict() for d, p in trainer.pools.items()}, "rng": capture_rng(),
        # fp16's loss scale (Accelerate's GradScaler); None in fp32 and bf16.
        "scaler": trainer.accelerator.scaler.state_dict() if trainer.accelerator.scaler else None,
        "best": trainer.best,
    }


def resume(trainer) -> None:
    """--continue_train: weights, EMA, optimizers, schedulers, pools, RNG and counters of ``--epoch``."""
    label = trainer.cfg.run.epoch
    found = ckpt.find_intact_checkpoint(trainer.run_dir, label, with_state=True)  # falls back if damaged
    if found is None:
        resume_classic(trainer, label)
        return
    check_same_networks(trainer, found)
    weights, _ = ckpt.load_checkpoint(found)
    for name, net in trainer.raw_nets.items():
        if name not in weights:
            raise ckpt.CheckpointError(f"{found} has no weights for {name}; was it saved by another --model?")
        ckpt.load_into(net, weights[name], f"{found} [{name}]")
    for name, ema in trainer.emas.items():   # a run that had no EMA yet starts it from the weights
        ckpt.load_into(ema.shadow_module, weights.get(f"ema_{name}", weights[name]), f"{found} [ema_{name}]")
    state = ckpt.load_training_state(found)
    if state is None:
        return
    trainer.opt_g.load_state_dict(state["opt_g"])
    trainer.opt_d.load_state_dict(state["opt_d"])
    trainer.sched_g.load_state_dict(state["sched_g"])
    trainer.sched_d.load_state_dict(state["sched_d"])
    for d, pool in trainer.pools.items():
        if d in state["pools"]:
            pool.load_state_dict(state["pools"][d], device=trainer.device)
    if state.get("scaler") and trainer.accelerator.scaler:
        trainer.accelerator.scaler.load_state_dict(state["scaler"])
    trainer.epoch, trainer.epoch_iter = state["epoch"], state["epoch_iter"]
    trainer.total_iters, trainer.steps = state["total_iters"], state["steps"]
    restore_rng(state["rng"])
    trainer.best = state.get("best")
    if trainer.is_main:
        print(f"Resumed from {found}: epoch {trainer.epoch}, iteration {trainer.total_iters}")


def check_same_networks(trainer, found) -> None:
    """The options must build the networks the checkpoint recorded.  Weights of the same shapes
    would load into a different network without complaint (vit_siren's decode overlap changes no
    shape), and a default that changed since the run started would silently change the run."""
    from translate.networks import flags_to_rebuild, network_record
    records = ckpt.load_network_records(found) or {}   # checkpoints before records: shapes are checked
    flags, differing = [], []
    for name, saved in records.items():
        if name in trainer.raw_nets and (wanted := flags_to_rebuild(saved, network_record(trainer.raw_nets[name]))):
            differing.append(name)
            flags += [f for f in wanted if f not in flags]   # G and D share the --vit_* flags: each once
    if flags:
        raise ckpt.CheckpointError(
            f"--continue_train: {found} holds {', '.join(differing)} built with other settings than these "
            f"options give (a flag left out, or a default changed since the run started): it was trained with "
            f"{', '.join(flags)}. Give those settings to resume it as it was trained.")


def resume_classic(trainer, label: str) -> None:
    """Weights only, from classic <label>_net_*.pth files (as the classic code resumes)."""
    names = trainer.spec.classic_names
    paths = {n: trainer.run_dir / f"{label}_net_{c}.pth" for n, c in names.items() if n in trainer.raw_nets}
    if not paths or not all(p.exists() for p in paths.values()):
        raise ckpt.CheckpointError(
            f"--continue_train: no checkpoint '{label}' in {trainer.run_dir} (looked for ckpt_{label}/ and "
            f"{label}_net_*.pth). Check --name, --checkpoints_dir and --epoch.")
    for name, path in paths.items():
        ckpt.load_into(trainer.raw_nets[name], ckpt.load_classic_state_dict(path), str(path))
    for name, ema in trainer.emas.items():
        ema.shadow_module.load_state_dict(trainer.raw_nets[name].state_dict())
    if trainer.is_main:
        print(f"Loaded classic weights {label}_net_*.pth; optimizers start fresh at epoch {trainer.epoch}")
