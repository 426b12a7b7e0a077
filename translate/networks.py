"""Build the networks a model needs from a NetworkConfig, and rebuild them from a checkpoint.

Which networks and their channel counts come from the model table (translate/models.py):
pix2pix has gen_ab and a conditional disc_b (judges A and B concatenated); cycle_gan / csgan
have gen_ab, gen_ba, disc_a (judges domain A) and disc_b (domain B).

Each network gets exactly the arguments its table entry declares (translate/nets/signatures.py):
the ones an option sets (OPTIONS below, the one place that maps option names to argument
names), the rest at their constructor defaults.  The built network keeps them as its
*record*, ``{"kind": "generator", "name": "unet_256", "args": {...}}``, which checkpoints
store next to the weights, so ``rebuild_networks`` needs nothing else.
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable, Iterable, Mapping, NamedTuple

from torch import nn

from options.config import NetworkConfig
from translate.nets.discriminators import (DISCRIMINATORS, build_discriminator, discriminator_arguments,
                                           discriminator_size_rule)
from translate.nets.generators import GENERATORS, build_generator, generator_arguments, generator_size_rule
from translate.nets.layers import init_weights
from translate.nets.signatures import SizeRule, fixed_arguments
from translate.models import get_model

# Constructor argument <- NetworkConfig field, per kind of network.  in_channels and
# out_channels come from the model (which domain a network reads and writes).
OPTIONS: Mapping[str, Mapping[str, str]] = {
    "generator": {"base_channels": "ngf", "norm": "norm", "use_dropout": "use_dropout",
                  "self_attention": "self_attention", "image_size": "crop_size",
                  "patch_size": "vit_patch_size", "dim": "vit_dim", "depth": "vit_depth",
                  "heads": "vit_heads", "noise_dim": "vit_noise", "pixel_channels": "vit_pixel_skip",
                  "decode_overlap": "vit_decode_overlap", "stem": "vit_stem", "fourier_scale": "vit_fourier_scale",
                  "output_init": "vit_output_init"},
    "discriminator": {"base_channels": "ndf", "n_layers": "n_layers_D", "norm": "norm",
                      "self_attention": "self_attention", "spectral_norm": "spectral_norm",
                      "image_size": "crop_size", "patch_size": "vit_patch_size", "dim": "vit_dim",
                      "depth": "vit_depth", "heads": "vit_heads", "overlap": "vit_patch_overlap",
                      "num_D": "num_D"},
}
# The flag of a field where it is not --<field>.
FLAG_OF_FIELD = {"use_dropout": "no_dropout"}
# Fields that do more than size a network (crop_size sizes the images): never "no effect".
NOT_ONLY_NETWORK = frozenset({"crop_size"})
# How a fixed argument reads in a message ("it always has 3 layers").
FIXED_WORDING = {"n_layers": "{} layers", "n_blocks": "{} residual blocks", "num_downs": "{} downsamplings"}


class _Kind(NamedTuple):
    flag: str                                   # the flag that names the network
    table: Mapping[str, Callable]               # GENERATORS / DISCRIMINATORS
    arguments: Callable[[str], dict]            # name -> {argument: default}
    build: Callable[..., nn.Module]             # (name, **arguments) -> network
    size_rule: Callable[[str, dict], SizeRule]  # (name, arguments) -> SizeRule


_KINDS = {"generator": _Kind("netG", GENERATORS, generator_arguments, build_generator, generator_size_rule),
          "discriminator": _Kind("netD", DISCRIMINATORS, discriminator_arguments, build_discriminator,
                                 discriminator_size_rule)}


def network_arguments(kind: str, name: str, net: NetworkConfig, **channels: int) -> dict:
    """Every argument table entry ``name`` declares: from ``net`` where an option sets it,
    from ``channels`` (in_channels / out_channels), else the constructor default."""
    options = OPTIONS[kind]
    args = {}
    for arg, default in _KINDS[kind].arguments(name).items():
        if arg in channels:
            args[arg] = channels[arg]
        elif arg in options:
            args[arg] = getattr(net, options[arg])
        elif default is not inspect.Parameter.empty:
            args[arg] = default
        else:
            raise TypeError(f"--{_KINDS[kind].flag} {name}: no option sets its argument {arg!r}")
    return args


def generator_kwargs(net: NetworkConfig, in_channels: int, out_channels: int) -> dict:
    return network_arguments("generator", net.netG, net, in_channels=in_channels, out_channels=out_channels)


def discriminator_kwargs(net: NetworkConfig, in_channels: int) -> dict:
    return network_arguments("discriminator", net.netD, net, in_channels=in_channels)


# Arguments whose default changed after records were written without them: such a record
# means the value of its time.  (vit_siren decoded its patches side by side until
# --vit_decode_overlap became a quarter patch by default.)
RECORDS_BEFORE = {("generator", "vit_siren"): {"decode_overlap": 0}}


def with_defaults_of_its_time(record: Mapping) -> dict:
    """A checkpoint's record with the arguments it lacks at the values they had when it was written."""
    return {**record, "args": {**RECORDS_BEFORE.get((record["kind"], record["name"]), {}), **record["args"]}}


def flags_to_rebuild(saved: Mapping, built: Mapping) -> list[str]:
    """What makes the options build the network ``saved`` records (``--vit_dim 384``,
    ``without --spectral_norm``), where the network ``built`` from the current options differs
    from it in an option-set argument; [] when they agree there.  A different --netG / --netD
    gives that flag alone."""
    saved = with_defaults_of_its_time(saved)   # built from today's options: it has every argument
    kind = saved["kind"]
    if saved["name"] != built["name"]:
        return [f"--{_KINDS[kind].flag} {saved['name']}"]
    flags = []
    for arg, field in OPTIONS[kind].items():
        if arg in saved["args"] and arg in built["args"] and saved["args"][arg] != built["args"][arg]:
            value = saved["args"][arg]
            if field == "use_dropout":   # the flag is its negation
                flags.append("without --no_dropout" if value else "--no_dropout")
            elif isinstance(value, bool) or value is None:   # a switch, or "no value: the default"
                flags.append(f"--{field}" if value else f"without --{field}")
            else:
                flags.append(f"--{FLAG_OF_FIELD.get(field, field)} {value}")
    return flags


def build_from_record(record: Mapping) -> nn.Module:
    """The network a record describes (its weights as constructed; load a state dict after)."""
    kind, name = record["kind"], record["name"]
    args = with_defaults_of_its_time(record)["args"]
    if kind not in _KINDS:
        raise ValueError(f"unknown network kind {kind!r} in a checkpoint record")
    net = _KINDS[kind].build(name, **args)
    net.network_record = {"kind": kind, "name": name, "args": args}
    return net


def make_generator(net: NetworkConfig, in_channels: int, out_channels: int) -> nn.Module:
    record = {"kind": "generator", "name": net.netG, "args": generator_kwargs(net, in_channels, out_channels)}
    return init_weights(build_from_record(record), net.init_type, net.init_gain)


def make_discriminator(net: NetworkConfig, in_channels: int) -> nn.Module:
    record = {"kind": "discriminator", "name": net.netD, "args": discriminator_kwargs(net, in_channels)}
    return init_weights(build_from_record(record), net.init_type, net.init_gain)


def network_record(net: nn.Module) -> dict | None:
    """The record of a network built here (through DDP / torch.compile wrappers), else None."""
    while isinstance(inner := getattr(net, "_orig_mod", None) or getattr(net, "module", None), nn.Module):
        net = inner
    record = getattr(net, "network_record", None)
    return copy.deepcopy(record) if record is not None else None


def rebuild_networks(records: Mapping[str, Mapping]) -> nn.ModuleDict:
    """{net name: network} from checkpoint records alone (no options); load the weights after."""
    return nn.ModuleDict({name: build_from_record(record) for name, record in records.items()})


def size_rule(kind: str, net: NetworkConfig) -> SizeRule:
    """The size rule of the --netG (kind 'generator') or --netD of ``net``, without building it."""
    name = getattr(net, _KINDS[kind].flag)
    channels = {"in_channels": 1, "out_channels": 1} if kind == "generator" else {"in_channels": 1}
    return _KINDS[kind].size_rule(name, network_arguments(kind, name, net, **channels))


def flags_without_effect(net: NetworkConfig, given: Iterable[str], kinds: Iterable[str]) -> list[str]:
    """One message per flag in ``given`` (flag names, without --) that sets an argument of
    none of the networks of ``kinds`` that ``net`` names."""
    flag_to_field = {FLAG_OF_FIELD.get(f, f): f for options in OPTIONS.values() for f in options.values()}
    messages = []
    for flag in given:
        field = flag_to_field.get(flag)
        if field is None or field in NOT_ONLY_NETWORK:
            continue
        targets = [(kind, arg) for kind in kinds for arg, f in OPTIONS[kind].items() if f == field]
        taken = any(arg in _KINDS[kind].arguments(getattr(net, _KINDS[kind].flag)) for kind, arg in targets)
        if targets and not taken:
            messages.append(_no_effect_message(flag, net, targets))
    return messages


def _no_effect_message(flag: str, net: NetworkConfig, targets: list[tuple[str, str]]) -> str:
    names, notes, others = [], [], []
    for kind, arg in targets:
        k = _KINDS[kind]
        name = getattr(net, k.flag)
        names.append(f"--{k.flag} {name}")
        fixed = fixed_arguments(k.table[name])
        if arg in fixed:
            notes.append(FIXED_WORDING.get(arg, arg + "={}").format(fixed[arg]))
        takers = sorted(n for n in k.table if arg in k.arguments(n))
        if takers:
            others.append(f"--{k.flag} " + _either(takers))
    note = f" (it always has {', '.join(notes)})" if notes else ""
    use = f"use {' or '.join(others)}, or drop the flag" if others else "drop the flag"
    return f"--{flag} has no effect on {' or '.join(names)}{note}; {use}"


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def build_networks(model: str, net: NetworkConfig, *, with_discriminators: bool = True) -> nn.ModuleDict:
    """The model's generators (and discriminators), in the table's order: that order decides the
    random initialization, so it must stay fixed for a model (seeded runs, bit-exact resume)."""
    spec = get_model(model)
    nets = nn.ModuleDict({name: make_generator(net, *spec.generator_channels(name, net.input_nc, net.output_nc))
                          for name in spec.generators})
    if with_discriminators:
        for name in spec.discriminators:
            nets[name] = make_discriminator(net, spec.discriminator_channels(name, net.input_nc, net.output_nc))
    return nets
