"""Transposed convolutions rewritten as ordinary ones, so that int8 backends can run them.

ONNX Runtime's CPU provider has an int8 kernel for Conv (QLinearConv) but none for
ConvTranspose, so in an int8 generator the up-sampling layers stayed float32: half of the
U-Net's up path (int8.py decides where the rewrite pays).  A transposed convolution with
stride s is s x s ordinary convolutions on the same input, one per output phase
(the output pixels (s i + r_h, s j + r_w) for fixed r_h, r_w), each using only the kernel
taps that land on that phase, followed by interleaving the phases (depth-to-space).  The
arithmetic is exactly the transposed convolution's: no zero taps are multiplied.

For one axis, output o = s i + r receives input m through tap k when o = s m - p + k, i.e.
m = i + (r + p - k) / s for the taps k with (r + p - k) divisible by s.  Phase r is thus a
cross-correlation over the input offsets d = (r + p - k) / s, with zero padding of -min(d)
before and max(d) after.  Examples: pix2pix's U-Net (k 4, s 2, p 1) has two taps per axis
and phase, so four 2 x 2 convolutions; the ResNet generator's (k 3, s 2, p 1, output padding 1)
has one tap for even outputs and two for odd ones (1 x 1, 1 x 2, 2 x 1 and 2 x 2 convolutions).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _axis_phases(kernel: int, stride: int, padding: int) -> list[tuple[list[int], int, int]]:
    """Per output phase r of one axis: (kernel taps in correlation order, pad before, pad after)."""
    phases = []
    for r in range(stride):
        taps = [k for k in range(kernel) if (r + padding - k) % stride == 0]
        offsets = [(r + padding - k) // stride for k in taps]
        order = sorted(range(len(taps)), key=lambda i: offsets[i])   # ascending input offset
        phases.append(([taps[i] for i in order], -min(offsets), max(offsets)))
    return phases


def can_rewrite(layer: nn.ConvTranspose2d) -> bool:
    """Whether ``layer`` is a case this rewrite covers: output exactly stride x input, no groups or dilation."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = (layer.kernel_size, layer.stride, layer.padding,
                                              layer.output_padding)
    return (layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros"
            and sh == sw and kh >= sh and kw >= sw                  # every phase has a tap
            and kh - 2 * ph + oh == sh and kw - 2 * pw + ow == sw)   # (H-1)s - 2p + k + op == s H


class PhaseConvTranspose2d(nn.Module):
    """The same function as a stride-s ``nn.ConvTranspose2d``, as s*s ``Conv2d`` calls and a pixel shuffle."""

    def __init__(self, layer: nn.ConvTranspose2d):
        super().__init__()
        if not can_rewrite(layer):
            raise ValueError(f"{layer}: only stride x input outputs, equal strides, no groups or dilation")
        self.stride = layer.stride[0]
        weight = layer.weight.detach()                          # C_in x C_out x kh x kw
        rows = _axis_phases(layer.kernel_size[0], self.stride, layer.padding[0])
        cols = _axis_phases(layer.kernel_size[1], self.stride, layer.padding[1])
        self.pads, self.phase_weights = [], nn.ParameterList()
        for taps_h, top, bottom in rows:
            for taps_w, left, right in cols:
                w = weight[:, :, taps_h][:, :, :, taps_w]      # C_in x C_out x th x tw
                self.phase_weights.append(nn.Parameter(w.transpose(0, 1).contiguous(), requires_grad=False))
                self.pads.append((left, right, top, bottom))
        bias = layer.bias.detach().clone() if layer.bias is not None else None
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = [F.conv2d(F.pad(x, pad) if any(pad) else x, w, self.bias)
                  for w, pad in zip(self.phase_weights, self.pads)]
        n, c, h, w = phases[0].shape
        # Channel c * s^2 + (r_h s + r_w) is pixel_shuffle's source for output (s i + r_h, s j + r_w).
        stacked = torch.stack(phases, 2).reshape(n, c * self.stride ** 2, h, w)
        return F.pixel_shuffle(stacked, self.stride)


def _is_frozen_batch_norm(module: nn.Module) -> bool:
    return (type(module) is nn.BatchNorm2d and module.affine and module.track_running_stats
            and module.running_var is not None)


def with_phase_deconvs(generator: nn.Module) -> tuple[nn.Module, int, int]:
    """An eval-mode copy of ``generator`` whose transposed convolutions are PhaseConvTranspose2d
    layers (with a batch norm that directly follows one in an nn.Sequential folded in).

    Returns (the copy, layers rewritten, layers left as they are).
    """
    net = copy.deepcopy(generator).eval()
    rewritten = kept = 0
    for parent in list(net.modules()):
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if not isinstance(child, nn.ConvTranspose2d):
                continue
            if not can_rewrite(child):
                kept += 1
                continue
            following = children[i + 1] if isinstance(parent, nn.Sequential) and i + 1 < len(children) else None
            if following is not None and _is_frozen_batch_norm(following[1]):
                # ONNX Runtime fuses ConvTranspose + BatchNorm, but after the rewrite the norm would
                # follow the depth-to-space and run on its own: fold it into the weights first.
                child = fuse_conv_bn_eval(child, following[1], transpose=True)
                setattr(parent, following[0], nn.Identity())
            setattr(parent, name, PhaseConvTranspose2d(child))
            rewritten += 1
    return net, rewritten, kept
