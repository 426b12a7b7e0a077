"""Every entry of GENERATORS and DISCRIMINATORS, built by the builder (translate/networks.py):
it takes exactly the arguments the builder passes and refuses any other, its size rule is
what the built network accepts, and the record a checkpoint keeps rebuilds it exactly.
A new network is covered by being registered.  Also: a network flag given on the command
line that neither network takes is an error at start-up, a default never is."""
from __future__ import annotations

import dataclasses
import functools
import inspect

import pytest
import torch

import train as train_entry
from options import OptionsError, parse_train_options
from options.config import NetworkConfig
from translate import checkpoint as ckpt
from translate.nets.discriminators import DISCRIMINATORS, build_discriminator
from translate.nets.generators import GENERATORS, build_generator, size_multiple, smallest_side
from translate.networks import (OPTIONS, make_discriminator, make_generator, network_record, rebuild_networks,
                                size_rule)

TINY = NetworkConfig(ngf=4, ndf=4, n_layers_D=2, num_D=2, norm="instance", vit_patch_size=8, vit_dim=16,
                     vit_depth=1, vit_heads=2, vit_pixel_skip=4, crop_size=64)
CASES = [("generator", n) for n in sorted(GENERATORS)] + [("discriminator", n) for n in sorted(DISCRIMINATORS)]
IDS = [f"{kind}:{name}" for kind, name in CASES]
TABLES = {"generator": (GENERATORS, build_generator), "discriminator": (DISCRIMINATORS, build_discriminator)}


def _config(kind: str, name: str, **changes) -> NetworkConfig:
    return dataclasses.replace(TINY, **{"netG" if kind == "generator" else "netD": name}, **changes)


def _build(kind: str, name: str, **changes) -> torch.nn.Module:
    net = _config(kind, name, **changes)
    return make_generator(net, 3, 2) if kind == "generator" else make_discriminator(net, 5)


def _declared(entry) -> tuple[set[str], dict]:
    """Keyword-only parameters of the entry's class less what a partial fixes, read here
    independently of translate/nets/signatures.py."""
    fixed = {}
    while isinstance(entry, functools.partial):
        fixed.update(entry.keywords)
        entry = entry.func
    params = inspect.signature(entry).parameters.values()
    assert not [p for p in params if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)], f"{entry} swallows arguments"
    assert all(p.kind is p.KEYWORD_ONLY for p in params), f"{entry}: arguments must be keyword-only"
    return {p.name for p in params} - set(fixed), fixed


def _side_input(kind: str, side: int) -> torch.Tensor:
    return torch.randn(1, 3 if kind == "generator" else 5, side, side)


@pytest.mark.parametrize("kind,name", CASES, ids=IDS)
def test_builder_passes_exactly_the_declared_arguments(kind, name):
    record = network_record(_build(kind, name))
    assert record["kind"] == kind and record["name"] == name
    declared, _ = _declared(TABLES[kind][0][name])
    if kind == "discriminator":
        declared.add("spectral_norm")        # build_discriminator applies it to any of them
    assert set(record["args"]) == declared
    for arg, field in OPTIONS[kind].items():  # what an option sets arrives with the option's value
        if arg in declared:
            assert record["args"][arg] == getattr(TINY, field), arg


@pytest.mark.parametrize("kind,name", CASES, ids=IDS)
def test_an_unknown_keyword_is_a_type_error(kind, name):
    args = network_record(_build(kind, name))["args"]
    with pytest.raises(TypeError, match="not_an_argument"):
        TABLES[kind][1](name, **args, not_an_argument=1)


def test_an_argument_fixed_by_the_table_entry_is_refused():
    with pytest.raises(TypeError):     # basic is the 3-layer PatchGAN; n_layers is --netD n_layers's
        build_discriminator("basic", in_channels=3, n_layers=5)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("kind,name", CASES, ids=IDS)
def test_size_rule_is_what_the_built_network_takes(kind, name, norm):
    rule = size_rule(kind, _config(kind, name, norm=norm))
    net = _build(kind, name, norm=norm).train()   # training, batch of one: the strictest case
    assert (size_multiple(net), smallest_side(net)) == (rule.multiple, rule.min_side)
    with torch.no_grad():
        for side in (rule.min_side, rule.min_side + rule.multiple):
            out = net(_side_input(kind, side))
            if kind == "generator":
                assert out.shape[-2:] == (side, side)
        smaller = rule.min_side - rule.multiple
        if smaller > 0:
            with pytest.raises((RuntimeError, ValueError)):
                net(_side_input(kind, smaller))


@pytest.mark.parametrize("kind,name", CASES, ids=IDS)
def test_checkpoint_record_rebuilds_the_network(kind, name, tmp_path):
    torch.manual_seed(0)
    net = _build(kind, name, spectral_norm=kind == "discriminator").eval()
    folder = ckpt.save_checkpoint(tmp_path, "latest", {"net": net}, config={})
    records = ckpt.load_network_records(folder)
    rebuilt = rebuild_networks(records)["net"].eval()
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    weights, _ = ckpt.load_checkpoint(folder)
    ckpt.load_into(rebuilt, weights["net"], "test")
    x = _side_input(kind, max(size_rule(kind, _config(kind, name)).min_side, 64))
    with torch.no_grad():
        expected, got = net(x), rebuilt(x)
    pairs = zip(*(o if isinstance(o, (list, tuple)) else [o] for o in (expected, got)))
    assert all(torch.equal(a, b) for a, b in pairs)


BASE = ["--gpu_ids", "-1", "--display_id", "0", "--crop_size", "64", "--load_size", "64"]


@pytest.mark.parametrize("argv,message", [
    (["--netD", "basic", "--n_layers_D", "5"],
     "--n_layers_D has no effect on --netD basic (it always has 3 layers); use --netD multiscale or n_layers, "
     "or drop the flag"),
    (["--netD", "pixel", "--n_layers_D", "3"], "--n_layers_D has no effect on --netD pixel"),   # even the default
    (["--netD", "pixel", "--n_layers", "4"], "--n_layers_D has no effect on --netD pixel"),     # an abbreviation
    (["--netG", "vit_siren", "--ngf", "8"], "--ngf has no effect on --netG vit_siren; use --netG resnet_6blocks"),
    (["--netG", "vit_siren", "--netD", "vit", "--norm", "batch"],
     "--norm has no effect on --netG vit_siren or --netD vit"),
    (["--netG", "unet_64", "--vit_dim", "32"], "--vit_dim has no effect on --netG unet_64 or --netD basic"),
    (["--netD", "unet", "--num_D", "3"], "--num_D has no effect on --netD unet; use --netD multiscale"),
    (["--netG", "vit_siren", "--no_dropout"], "--no_dropout has no effect on --netG vit_siren"),
])
def test_a_network_flag_no_network_takes_is_an_error(argv, message):
    with pytest.raises(OptionsError) as err:
        parse_train_options(argv + BASE)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("argv", [
    ["--netG", "vit_siren", "--netD", "vit"],                  # --ngf, --norm, --no_dropout ... at their defaults
    ["--model", "pix2pix", "--netG", "unet_64", "--netD", "pixel"],  # pix2pix's own defaults (norm batch) are not given
    ["--model", "cycle_gan", "--netG", "vit_siren"],           # cycle_gan's default no_dropout is not given
    ["--netG", "vit_siren", "--norm", "batch", "--ndf", "8"],  # the discriminator takes them
    ["--netD", "n_layers", "--n_layers_D", "2"],
    ["--netD", "multiscale", "--num_D", "2", "--n_layers_D", "2"],
    ["--netG", "resnet_6blocks", "--netD", "vit", "--vit_dim", "32", "--vit_heads", "2", "--crop_size", "64"],
])
def test_defaults_and_flags_a_network_takes_are_fine(argv):
    net = parse_train_options(argv + BASE).net   # no OptionsError, and every network flag arrives
    for flag, value in zip(argv[::2], argv[1::2]):
        field = flag.lstrip("-")
        if hasattr(net, field):
            assert str(getattr(net, field)) == value, (flag, getattr(net, field))


def test_train_py_stops_with_one_line_naming_the_flag(capsys, tmp_path):
    code = train_entry.main(["--netD", "basic", "--n_layers_D", "5", "--checkpoints_dir", str(tmp_path)] + BASE)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "--n_layers_D has no effect on --netD basic" in err
    assert not list(tmp_path.iterdir())


def test_load_generators_rebuilds_from_the_records_not_the_config(tmp_path):
    """The records decide: a config naming another generator does not matter when they are there."""
    from translate.inference.loading import load_generators
    config = parse_train_options(["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "8"] + BASE).to_dict()
    gen = _build("generator", "unet_64").eval()
    ckpt.save_checkpoint(tmp_path / "run", "latest", {"gen_ab": gen}, config, model="pix2pix")
    loaded = load_generators(tmp_path / "run", "latest", model="pix2pix", net=NetworkConfig())
    rebuilt = loaded.generators["gen_ab"].eval()
    assert network_record(rebuilt) == network_record(gen)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), gen(x))


def test_flags_to_rebuild_name_what_makes_the_options_build_the_recorded_network():
    from translate.networks import flags_to_rebuild
    gen = lambda **args: {"kind": "generator", "name": "vit_siren", "args": {"dim": 256, "use_dropout": False,
                                                                             "fourier_scale": None, **args}}
    assert flags_to_rebuild(gen(), gen()) == []
    assert flags_to_rebuild(gen(dim=384), gen()) == ["--vit_dim 384"]
    assert flags_to_rebuild(gen(use_dropout=True), gen()) == ["without --no_dropout"]
    assert flags_to_rebuild(gen(), gen(fourier_scale=3.0)) == ["without --vit_fourier_scale"]
    # A record from before decode_overlap existed means the side-by-side decoder of its time.
    old = gen()
    assert flags_to_rebuild(old, gen(decode_overlap=4)) == ["--vit_decode_overlap 0"]
    assert flags_to_rebuild(old, gen(decode_overlap=0)) == []
    disc = {"kind": "discriminator", "name": "basic", "args": {"spectral_norm": True}}
    assert flags_to_rebuild(disc, {**disc, "args": {"spectral_norm": False}}) == ["--spectral_norm"]
    assert flags_to_rebuild(disc, {**disc, "name": "vit"}) == ["--netD basic"]


def test_runs_of_the_former_vit_defaults_are_told_the_flags_that_rebuild_them():
    """Patch 16 / width 256 / 4 heads were the defaults until patch 8 / 128 / 2: resuming such a run
    with today's defaults must name exactly those three flags, for G and D."""
    from translate.networks import discriminator_kwargs, flags_to_rebuild, generator_kwargs
    vit = ["--netG", "vit_siren", "--netD", "vit"]
    former = parse_train_options(vit + ["--vit_patch_size", "16", "--vit_dim", "256", "--vit_heads", "4"]).net
    today = parse_train_options(vit).net
    assert (today.vit_patch_size, today.vit_dim, today.vit_heads) == (8, 128, 2)
    wanted = ["--vit_patch_size 16", "--vit_dim 256", "--vit_heads 4"]
    for kind, name, kwargs in (("generator", "vit_siren", lambda n: generator_kwargs(n, 3, 3)),
                               ("discriminator", "vit", lambda n: discriminator_kwargs(n, 6))):
        record = lambda net: {"kind": kind, "name": name, "args": kwargs(net)}
        assert flags_to_rebuild(record(former), record(today)) == wanted
        assert flags_to_rebuild(record(former), record(former)) == []
