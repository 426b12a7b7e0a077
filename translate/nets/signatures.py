"""What a name-table entry takes, read from its constructor, and the image sizes it accepts.

A table entry is a network class or a ``functools.partial`` of one that fixes some of its
arguments (``resnet_9blocks`` fixes ``n_blocks=9``).  Its *arguments* are the class's
keyword-only constructor parameters, less the ones the partial fixes; the builder passes
exactly those, and checkpoints record them (translate/networks.py).

Each network class also has a static ``size_rule`` that says, from some of the same
arguments and without building anything, which H and W it takes: sides that are multiples
of ``multiple`` and at least ``min_side`` (batch of one, training mode: the strictest case
for batch and instance norm).
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple


class SizeRule(NamedTuple):
    multiple: int = 1    # H and W must be multiples of this
    min_side: int = 1    # and at least this


def network_class(entry: Callable) -> type:
    while isinstance(entry, functools.partial):
        entry = entry.func
    return entry


def fixed_arguments(entry: Callable) -> dict[str, Any]:
    """The arguments a partial entry fixes (``{'n_layers': 3}`` for ``basic``)."""
    fixed: dict[str, Any] = {}
    while isinstance(entry, functools.partial):
        fixed = {**entry.keywords, **fixed}
        entry = entry.func
    return fixed


def entry_arguments(entry: Callable) -> dict[str, Any]:
    """{argument: default} of what the entry takes: keyword-only parameters not fixed by a partial."""
    fixed = fixed_arguments(entry)
    params = inspect.signature(network_class(entry)).parameters.values()
    return {p.name: p.default for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in fixed}


def build_entry(entry: Callable, label: str, arguments: dict[str, Any]):
    """``entry(**arguments)``; an argument the entry fixes or does not take is a TypeError."""
    fixed = fixed_arguments(entry)
    clash = sorted(set(arguments) & set(fixed))
    if clash:
        raise TypeError(f"{label} fixes {', '.join(f'{k}={fixed[k]!r}' for k in clash)}: "
                        f"it takes no {clash[0]!r} argument")
    return entry(**arguments)


def call_with_own_arguments(function: Callable, arguments: dict[str, Any]) -> Any:
    """Call ``function`` with the items of ``arguments`` that it declares (keyword-only)."""
    names = inspect.signature(function).parameters
    return function(**{k: v for k, v in arguments.items() if k in names})


def entry_size_rule(entry: Callable, arguments: dict[str, Any]) -> SizeRule:
    """The entry's size rule for these arguments (constructor defaults fill the rest)."""
    cls = network_class(entry)
    full = {**entry_arguments(entry), **fixed_arguments(entry), **arguments}
    rule = getattr(cls, "size_rule", None)
    return SizeRule(*call_with_own_arguments(rule, full)) if rule else SizeRule()


def conv_out(side: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution or pooling; 0 or less where the input is too small."""
    if side + 2 * padding < kernel:
        return 0
    return (side + 2 * padding - kernel) // stride + 1


def normalizes(norm: str) -> bool:
    """Whether ``norm`` needs more than one value per channel (batch of one, training mode)."""
    return norm != "none"


def smallest(runs: Callable[[int], bool], multiple: int = 1, limit: int = 1 << 16) -> int:
    """The smallest multiple of ``multiple`` on which ``runs(side)`` holds (sizes grow monotonically)."""
    for side in range(multiple, limit + 1, multiple):
        if runs(side):
            return side
    raise ValueError(f"no image side up to {limit} fits")
