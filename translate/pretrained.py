"""Download a published classic generator by name: ``python -m translate.pretrained horse2zebra``.

    python -m translate.pretrained --list
    python -m translate.pretrained horse2zebra            # -> checkpoints/horse2zebra_pretrained/
    python -m translate.pretrained sat2map --kind cyclegan   # names published by both projects

The file lands in ``checkpoints/NAME_pretrained/latest_net_G.pth``, as the
classic download scripts put it, next to a classic ``train_opt.txt`` holding
what the classic README says the generator needs (CycleGAN: resnet_9blocks,
instance norm, no dropout; pix2pix: unet_256, batch norm, dropout, and the
dataset direction it translates).  ``test.py --model test --name NAME_pretrained``
and ``python -m translate IMAGES --name NAME_pretrained`` read it, so no
network flag is needed.

The download goes through datasets/download.py's ``fetch``: a progress bar,
a temporary ``.part`` file that an interrupted run continues (HTTP Range), and
a rename at the end.  The file is then loaded weights-only into the expected
network; only when that works does ``NAME_pretrained/`` appear.  ``--base_url``
or TRANSLATE_PRETRAINED_URL points at a mirror with the same paths.
"""
from __future__ import annotations

import importlib
import itertools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from translate import checkpoint as ckpt
from translate import files
from translate._checkout import import_from_checkout

import_from_checkout("options")
import_from_checkout("datasets")
download = importlib.import_module("datasets.download")
from options import format_options  # noqa: E402  (needs the checkout on sys.path)
from options.config import NetworkConfig  # noqa: E402
from translate.nets.generators import build_generator  # noqa: E402
from translate.networks import generator_kwargs  # noqa: E402

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu"
ENV_BASE_URL = "TRANSLATE_PRETRAINED_URL"


@dataclass(frozen=True)
class Kind:
    url: str           # below the base URL
    model: str         # the classic --model it was trained with
    netG: str
    norm: str
    use_dropout: bool


KINDS = {
    "cyclegan": Kind("cyclegan/pretrained_models/{name}.pth", "cycle_gan", "resnet_9blocks", "instance", False),
    "pix2pix": Kind("pix2pix/models-pytorch/{name}.pth", "pix2pix", "unet_256", "batch", True),
}
CYCLEGAN = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite",
            "horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
            "style_vangogh", "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo",
            "facades_photo2label", "facades_label2photo", "iphone2dslr_flower")
# pix2pix name -> the direction in its dataset's A|B images (classic README: facades is photo|label,
# so label2photo runs BtoA; maps is aerial|map; night2day is night|day; edges2shoes is edges|shoe).
PIX2PIX = {"edges2shoes": "AtoB", "sat2map": "AtoB", "map2sat": "BtoA", "facades_label2photo": "BtoA",
           "day2night": "BtoA"}
NAMES = {"cyclegan": CYCLEGAN, "pix2pix": tuple(PIX2PIX)}


class PretrainedError(ValueError):
    """An unknown name or an unusable download; the message says what to do."""


def resolve_kind(name: str, kind: str | None) -> str:
    """pix2pix for its names unless --kind says otherwise (the rule of datasets.download)."""
    try:
        return download.pick_kind(name, kind, NAMES, "pretrained model")
    except LookupError as err:
        hint = (f"; `python -m translate.pretrained --list` shows the {len(CYCLEGAN) + len(PIX2PIX)} "
                f"published ones" if str(err).startswith("unknown pretrained") else "")
        raise PretrainedError(f"{err}{hint}") from None


def listing() -> str:
    lines = []
    for kind, names in NAMES.items():
        spec = KINDS[kind]
        lines.append(f"{kind} ({spec.netG}, {spec.norm} norm, {'dropout' if spec.use_dropout else 'no dropout'}):")
        for name in names:
            both = " (also the other kind: --kind)" if name in NAMES["cyclegan"] and name in PIX2PIX else ""
            lines.append(f"  {name}{both}")
    return "\n".join(lines)


# ---- which network a classic generator file holds ----------------------------------------

# Every classic generator setting, for files that come without a train_opt.txt.
CLASSIC_CANDIDATES = [(g, n, d) for g, n, d in itertools.product(
    ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"), ("instance", "batch"), (False, True))]


def _complete(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the BatchNorm counters that files saved before PyTorch 0.4 lack (torch fills them too)."""
    extra = {k: torch.tensor(0) for k in own if k.endswith("num_batches_tracked") and k not in state}
    return {**state, **extra}


def fit_classic_generator(state: dict[str, torch.Tensor], candidates, source: str
                          ) -> tuple[nn.Module, NetworkConfig, bool]:
    """The generator that ``state`` loads into (strictly): (network, its config, state was completed).

    ``candidates`` are (netG, norm, use_dropout); the width (ngf) and the channel
    counts come from the file's tensors.  Candidates are compared on the meta
    device (shapes only), so trying several costs no memory.
    """
    convs = [v for v in state.values() if v.ndim == 4]
    if not convs:
        raise ckpt.CheckpointError(f"{source} holds no convolution weights: not a generator")
    ngf, in_nc = convs[0].shape[:2]
    last = None
    for (net_g, norm, dropout), out_nc in itertools.product(candidates, (3, 1)):
        net = NetworkConfig(netG=net_g, ngf=int(ngf), norm=norm, use_dropout=dropout,
                            input_nc=int(in_nc), output_nc=out_nc)
        with torch.device("meta"):
            shapes = build_generator(net_g, **generator_kwargs(net, net.input_nc, out_nc)).state_dict()
        filled = _complete(state, shapes)
        kept = {k: v for k, v in filled.items()   # the InstanceNorm stats load_into drops too
                if k in shapes or not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        if kept.keys() == shapes.keys() and all(v.shape == shapes[k].shape for k, v in kept.items()):
            module = build_generator(net_g, **generator_kwargs(net, net.input_nc, out_nc))
            ckpt.load_into(module, filled, source)
            return module.eval(), net, len(filled) != len(state)
        last = net
    if len(candidates) == 1 and last is not None:   # name the expected network and the first mismatch
        expected = build_generator(last.netG, **generator_kwargs(last, last.input_nc, 3))
        ckpt.load_into(expected, _complete(state, expected.state_dict()), source)
    raise ckpt.CheckpointError(f"{source} is not a classic generator ({', '.join(sorted({c[0] for c in candidates}))} "
                               f"with instance or batch norm); give its run folder with a train_opt.txt instead")


def write_train_opt(folder: Path, name: str, kind: str, net: NetworkConfig) -> None:
    """A classic train_opt.txt with the flags the generator needs (read by test.py and translate)."""
    spec = KINDS[kind]
    values = {"name": f"{name}_pretrained", "model": spec.model, "netG": net.netG, "norm": net.norm,
              "no_dropout": not net.use_dropout, "ngf": net.ngf, "input_nc": net.input_nc,
              "output_nc": net.output_nc, "crop_size": 256, "load_size": 256,
              "direction": PIX2PIX.get(name, "AtoB") if kind == "pix2pix" else "AtoB",
              "pretrained_from": f"{kind} {name}"}
    text = format_options({k: {"value": v, "default": v} for k, v in values.items()})
    files.write_text(folder / "train_opt.txt", text)


def _looks_like_html(path: Path) -> bool:
    """Weights files start with a zip or pickle header; web pages (and XML errors) with a tag."""
    with open(path, "rb") as f:
        return f.read(512).lstrip().startswith(b"<")


def verify(path: Path, kind: str, url: str) -> tuple[NetworkConfig, bool]:
    """Load ``path`` weights-only as the generator ``kind`` publishes; rewrite it if it was completed."""
    if _looks_like_html(path):
        raise PretrainedError(f"{url} is a web page, not a weights file (an error page or a login "
                              f"portal?); check --base_url / ${ENV_BASE_URL}.")
    spec = KINDS[kind]
    try:
        state = ckpt.load_classic_state_dict(path)
        module, net, completed = fit_classic_generator(state, [(spec.netG, spec.norm, spec.use_dropout)], url)
    except ckpt.CheckpointError as err:
        raise PretrainedError(f"{url} is not a usable {kind} generator ({spec.netG}): {err} "
                              f"The file may be damaged or incomplete.") from None
    if completed:   # store what inference loads strictly; same weights
        torch.save({k: v for k, v in module.state_dict().items()}, path)
    return net, completed


def fetch_pretrained(name: str, *, kind: str | None = None, checkpoints_dir: str = "./checkpoints",
                     base_url: str | None = None) -> Path:
    """Download ``name`` into ``checkpoints_dir/NAME_pretrained`` (unless there); return that folder."""
    kind = resolve_kind(name, kind)
    final = Path(checkpoints_dir) / f"{name}_pretrained"
    if (final / "latest_net_G.pth").exists():
        if not (final / "train_opt.txt").exists():   # fetched by the classic download script
            try:
                net, _ = verify(final / "latest_net_G.pth", kind, str(final / "latest_net_G.pth"))
            except PretrainedError as err:
                raise PretrainedError(f"{err} Remove {final} to download it again.") from None
            write_train_opt(final, name, kind, net)
            print(f"{final} holds the {kind} {name} generator; wrote its train_opt.txt", file=sys.stderr)
        elif f"{kind} {name}" not in (final / "train_opt.txt").read_text(errors="replace"):
            raise PretrainedError(f"{final} already holds another generator; remove it to download "
                                  f"the {kind} {name}")
        else:
            print(f"{final} is already there", file=sys.stderr)
        return final
    base = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{KINDS[kind].url.format(name=name)}"
    staging = Path(checkpoints_dir) / f".{name}_pretrained.download"
    staging.mkdir(parents=True, exist_ok=True)
    dest = staging / "latest_net_G.pth"
    hint = f"Check the network, or pass --base_url / set {ENV_BASE_URL} to a mirror."
    try:
        download.fetch(url, str(dest), resume=True, hint=hint)
    except download.DataError as err:
        if not any(staging.iterdir()):   # nothing to resume from
            shutil.rmtree(staging, ignore_errors=True)
        raise PretrainedError(str(err)) from None
    try:
        try:
            net, _ = verify(dest, kind, url)
        except PretrainedError as err:
            raise PretrainedError(f"{err} Nothing was kept; run again to download it anew.") from None
        write_train_opt(staging, name, kind, net)
        final.mkdir(parents=True, exist_ok=True)
        os.replace(staging / "train_opt.txt", final / "train_opt.txt")
        os.replace(dest, final / "latest_net_G.pth")   # last: its presence means "complete"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def build_parser():
    from options.commands import pretrained_parser
    return pretrained_parser(__doc__.split("\n\n")[0], kinds=KINDS, env_base_url=ENV_BASE_URL,
                             default_base_url=DEFAULT_BASE_URL)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    if not args.name:
        parser.error("give a model NAME, or --list")
    try:
        if args.kind is None and args.name in PIX2PIX and args.name in CYCLEGAN:
            print(f"note: {args.name} is published as a pix2pix and a CycleGAN generator; fetching the "
                  f"pix2pix one (--kind cyclegan for the other)", file=sys.stderr)
        folder = fetch_pretrained(args.name, kind=args.kind, checkpoints_dir=args.checkpoints_dir,
                                  base_url=args.base_url)
    except PretrainedError as err:
        parser.exit(2, f"error: {err}\n")
    print(folder / "latest_net_G.pth")
    run = folder.name
    print(f"translate with: python -m translate IMAGES --name {run} --output OUT\n"
          f"           or: python test.py --model test --name {run} --dataroot IMAGES", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
