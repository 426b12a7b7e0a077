"""Image pool of Shrivastava et al. (2017): D also sees fakes from earlier steps.

With probability 1/2 a stored fake is returned (and replaced by the new one),
otherwise the new fake itself; the pool fills up first.  Its contents and random
state are part of the training state, so a resumed run continues exactly.

Fakes may differ in size (--preprocess scale_width or none on mixed images).
A query returns a batch of its own shape, so a stored fake only stands in for a
new one of the same shape: the slot is drawn among those.  When all fakes have
one size (every crop mode) that is every slot, so the draws are the classic ones.
"""
from __future__ import annotations

import random

import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []   # 1 x C x H x W each
        self.rng = random.Random(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            if self.rng.random() <= 0.5:
                out.append(image)
                continue
            same = [i for i, stored in enumerate(self.images) if stored.shape == image.shape]
            if same:
                slot = same[self.rng.randrange(len(same))]
                out.append(self.images[slot].clone())
            else:   # nothing of this size yet: keep the new fake, and let it in for next time
                slot = self.rng.randrange(self.size)
                out.append(image)
            self.images[slot] = image.clone()
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        # One size: one N x C x H x W tensor, the format earlier versions wrote and read.
        # Several sizes: a list of 1 x C x H x W tensors, in slot order.
        if not self.images:
            images = torch.empty(0)
        elif all(img.shape == self.images[0].shape for img in self.images):
            images = torch.cat(self.images).cpu()
        else:
            images = [img.cpu() for img in self.images]
        return {"images": images, "rng": list(self.rng.getstate()[1]), "rng_pos": self.rng.getstate()[2]}

    def load_state_dict(self, state: dict, device=None) -> None:
        images = state["images"]
        if isinstance(images, torch.Tensor):
            self.images = [img.unsqueeze(0).to(device) for img in images] if images.numel() else []
        else:
            self.images = [img.reshape(1, *img.shape[-3:]).to(device) for img in images]
        self.rng.setstate((3, tuple(int(x) for x in state["rng"]), state["rng_pos"]))
