"""The run flags, defined once: which run, which checkpoint, which way, where and how it runs.

``--name --checkpoints_dir --epoch --direction --gpu_ids --mixed_precision
--channels_last --compile`` mean the same in train.py, test.py, ``python -m
translate``, the export and the benchmark; each command adds the ones it takes with
``add_run_flags(parser, "name", "checkpoints_dir", ...)`` (in the order its --help
lists them), and may say what the flag means for it (another default or help line)
through keyword overrides: ``add_run_flags(p, "direction", direction={"default": "AtoB"})``.
The device and dtype they select are decided in translate/devices.py.
"""
from __future__ import annotations

import argparse

RUN_FLAGS: dict[str, dict] = {
    "name": {"required": True, "help": "run name: checkpoints_dir/name"},
    "checkpoints_dir": {"default": "./checkpoints"},
    "epoch": {"default": "latest", "help": "which checkpoint: latest, an epoch number, iter_N"},
    "direction": {"choices": ("AtoB", "BtoA"), "default": None,
                  "help": "default: the direction the run was trained in; the other one uses gen_ba"},
    "gpu_ids": {"default": "0", "help": "GPU to use (the first id); -1 for the CPU"},
    "mixed_precision": {"choices": ("no", "bf16", "fp16"), "default": "no"},
    "channels_last": {"action": "store_true", "help": "channels-last memory format"},
    "compile": {"action": "store_true", "help": "torch.compile the generator"},
}


def add_run_flags(parser: argparse.ArgumentParser, *names: str, **overrides: dict) -> None:
    """Add the run flags ``names`` to ``parser``; ``overrides[name]`` replaces some of a flag's settings.

    An override value of None removes that setting (``help=None``: no help line).
    """
    unknown = [n for n in (*names, *overrides) if n not in RUN_FLAGS]
    if unknown:
        raise KeyError(f"not a run flag: {', '.join(unknown)} (run flags: {', '.join(RUN_FLAGS)})")
    stray = [n for n in overrides if n not in names]
    if stray:
        raise KeyError(f"overrides for flags not added: {', '.join(stray)}")
    for name in names:
        settings = {**RUN_FLAGS[name], **overrides.get(name, {})}
        parser.add_argument(f"--{name}", **{k: v for k, v in settings.items() if v is not None})
