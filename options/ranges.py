"""Allowed ranges of numeric flags, as argparse types: ``p.add_argument("--ngf", type=ints(1, 4096))``.

A value outside its range (or nan, inf, a wrong type) stops at parse time with
argparse's usual one-line error, exit 2:

    train.py: error: argument --lr: 'nan' is not a finite number in (0, 1]

So each flag's range is written where the flag is defined, and ``--help`` shows it.
Upper bounds are generous limits past which a run cannot work (memory, float
overflow), not advice.  Checks that involve several flags (divisibility,
sizes against the networks) are in options/__init__.py.
"""
from __future__ import annotations

import argparse
import math


class NumberRange:
    """An argparse ``type``: parses ``kind`` (int or float) and checks it lies in the range."""

    def __init__(self, kind: type, low: float | None, high: float | None, *, low_open: bool = False,
                 high_open: bool = False, allow_inf: bool = False):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open, self.allow_inf = low_open, high_open, allow_inf
        self.__name__ = self.describe()  # argparse names the type in some messages

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number" if self.allow_inf else "a finite number"
        low = "" if self.low is None else ("(" if self.low_open else "[") + _show(self.low)
        high = "" if self.high is None else _show(self.high) + (")" if self.high_open else "]")
        if low and high:
            return f"{what} in {low}, {high}"
        if low:
            return f"{what} {'>' if self.low_open else '>='} {_show(self.low)}"
        if high:
            return f"{what} {'<' if self.high_open else '<='} {_show(self.high)}"
        return what

    def contains(self, value: float) -> bool:
        if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high or (not self.high_open and value == self.high))

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except (TypeError, ValueError, OverflowError):
            value = None
        if value is None or not self.contains(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}")
        return value

    def __repr__(self) -> str:
        return f"NumberRange({self.describe()})"


def _show(bound: float) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) <= 1e9:
        return str(int(bound))
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def ints(low: int | None, high: int | None) -> NumberRange:
    """An integer in [low, high]."""
    return NumberRange(int, low, high)


def floats(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False,
           allow_inf: bool = False) -> NumberRange:
    """A float in the range; finite unless ``allow_inf``."""
    return NumberRange(float, low, high, low_open=low_open, high_open=high_open, allow_inf=allow_inf)


# Ranges shared by several flags (and entry points).
BIG = 10**9                            # iteration / epoch counts and frequencies
SIDE = ints(1, 16384)                  # an image side in pixels
CHANNELS = ints(1, 4096)               # --ngf, --ndf
WORKERS = ints(0, 256)                 # data-loading processes
FREQUENCY = ints(0, BIG)               # every N images; 0 = never
WEIGHT = floats(0, 1e6)                # a loss weight: 0 turns the term off
LEARNING_RATE = floats(0, 1, low_open=True)
FRACTION = floats(0, 1, high_open=True)  # beta1, EMA decay
SEED = ints(0, 2**32 - 1)


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (exit 2), not the whole usage text.

    The usage of train.py is forty lines; the line that matters would scroll away.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")

    def add_argument(self, *args, **kwargs):
        """A numeric flag's range goes into its --help line."""
        kind = kwargs.get("type")
        if isinstance(kind, NumberRange):
            help_text = kwargs.get("help")
            kwargs["help"] = f"{help_text}; {kind.describe()}" if help_text else kind.describe()
        return super().add_argument(*args, **kwargs)


def quiet_parser(**kwargs) -> FlagParser:
    """The parser every entry point uses: one-line errors, defaults shown in --help."""
    kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
    return FlagParser(**kwargs)
