"""The model table: every fact about a ``--model`` lives here, and everything else derives from it.

A model is a set of networks and the loss terms that tie them together:

- generators: our name -> (domain it reads, domain it writes); ``gen_ab`` reads A
  (``--input_nc`` channels) and writes B (``--output_nc``), ``gen_ba`` the reverse;
- discriminators: our name -> the domain it judges; a conditional one (pix2pix) also
  sees the input image, so it takes input_nc + output_nc channels;
- paired: training needs aligned A/B pairs (``--dataset_mode aligned`` or ``paired_folders``);
- classic_names: our network names -> the classic code's (``latest_net_G_A.pth``).  Classic
  D_A judges G_A's output, i.e. domain B, hence ``disc_b``;
- defaults / train_defaults: flag defaults the classic model set (``--model pix2pix``
  means unet_256, batch norm, aligned data, ...), for both scripts / train.py only;
- terms: the generator loss terms the model can enable (each enabled when its weight > 0);
- rows: what test.py shows per image, in order.

``--model test`` is test.py's single-generator model: one ``G`` file, no discriminators.
Adding a model means adding one entry here (and any new loss term to TERMS in training/terms.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    generators: Mapping[str, tuple[str, str]]          # gen name -> (reads domain, writes domain)
    discriminators: Mapping[str, str]                  # disc name -> domain it judges
    classic_names: Mapping[str, str]                   # our network name -> classic name (G_A, D, ...)
    rows: tuple[str, ...]                              # test.py's images per row
    terms: tuple[str, ...] = ()                        # generator loss terms the model can use
    conditional_d: bool = False                        # D also sees the input A (pix2pix)
    paired: bool = False                               # training needs aligned pairs
    trainable: bool = True                             # False: test.py only (--model test)
    defaults: Mapping[str, object] = field(default_factory=dict)         # train.py and test.py
    train_defaults: Mapping[str, object] = field(default_factory=dict)   # train.py only

    @property
    def two_way(self) -> bool:
        """Both directions trained (a cycle model): gen_ba exists, identity terms apply."""
        return "gen_ba" in self.generators

    def flag_defaults(self, is_train: bool) -> dict:
        """The defaults this model gives the flags (train.py: both dicts, test.py: ``defaults``)."""
        return {**self.defaults, **(self.train_defaults if is_train else {})}

    def discriminator_channels(self, disc: str, input_nc: int, output_nc: int) -> int:
        """Input channels of discriminator ``disc``: its domain's, plus A's when conditional."""
        judged = output_nc if self.discriminators[disc] == "b" else input_nc
        return judged + (input_nc if self.conditional_d else 0)

    def generator_channels(self, gen: str, input_nc: int, output_nc: int) -> tuple[int, int]:
        """(in, out) channels of generator ``gen``."""
        nc = {"a": input_nc, "b": output_nc}
        reads, writes = self.generators[gen]
        return nc[reads], nc[writes]


_CYCLE_TERMS = ("gan_ab", "gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b")
_CYCLE_ROWS = ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")
_CYCLE_NAMES = MappingProxyType({"gen_ab": "G_A", "gen_ba": "G_B", "disc_b": "D_A", "disc_a": "D_B"})
_TWO_GENERATORS = MappingProxyType({"gen_ab": ("a", "b"), "gen_ba": ("b", "a")})
# The order of generators, then discriminators, is the order the networks are built (their random
# initialization) and their parameters enter the optimizers (saved optimizer state): keep it.
_TWO_JUDGES = MappingProxyType({"disc_b": "b", "disc_a": "a"})

MODELS: Mapping[str, ModelSpec] = MappingProxyType({
    "cycle_gan": ModelSpec(
        name="cycle_gan", description="CycleGAN (Zhu et al. 2017): unpaired, two generators and two judges",
        generators=_TWO_GENERATORS, discriminators=_TWO_JUDGES, classic_names=_CYCLE_NAMES,
        rows=_CYCLE_ROWS, terms=_CYCLE_TERMS,
        defaults={"no_dropout": True}),
    "pix2pix": ModelSpec(
        name="pix2pix", description="pix2pix (Isola et al. 2017): paired, conditional GAN + L1",
        generators=MappingProxyType({"gen_ab": ("a", "b")}), discriminators=MappingProxyType({"disc_b": "b"}),
        classic_names=MappingProxyType({"gen_ab": "G", "disc_b": "D"}),
        rows=("real_A", "fake_B", "real_B"), terms=("gan_ab", "l1"), conditional_d=True, paired=True,
        defaults={"norm": "batch", "netG": "unet_256", "dataset_mode": "aligned"},
        train_defaults={"pool_size": 0, "gan_mode": "vanilla", "lambda_L1": 100.0}),
    "csgan": ModelSpec(
        name="csgan", description="CSGAN (Kancharagunta & Dubey 2019): paired CycleGAN + cyclic-synthesized term",
        generators=_TWO_GENERATORS, discriminators=_TWO_JUDGES, classic_names=_CYCLE_NAMES,
        rows=_CYCLE_ROWS, terms=_CYCLE_TERMS + ("l1", "cs_a", "cs_b"), paired=True,
        defaults={"no_dropout": True, "dataset_mode": "aligned"}, train_defaults={"lambda_cs": 10.0}),
    "test": ModelSpec(
        name="test", description="test.py only: one generator file G (or G_A / G_B with --model_suffix)",
        generators=MappingProxyType({"gen_ab": ("a", "b")}), discriminators=MappingProxyType({}),
        classic_names=MappingProxyType({"gen_ab": "G"}), rows=("real", "fake"), trainable=False,
        defaults={"dataset_mode": "single"}),
})

TRAINABLE = tuple(name for name, spec in MODELS.items() if spec.trainable)


def get_model(name: str) -> ModelSpec:
    """The spec of ``--model name``; an unknown name is an error listing the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown --model {name!r}; valid names: {', '.join(sorted(MODELS))}") from None
