"""Image pool of Shrivastava et al. (2017): D also sees fakes from earlier steps.

With probability 1/2 a stored fake is returned (and replaced by the new one),
otherwise the new fake itself; the pool fills up first.  Its contents and random
state are part of the training state, so a resumed run continues exactly.
"""
from __future__ import annotations

import random

import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
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
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        images = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"images": images, "rng": list(self.rng.getstate()[1]), "rng_pos": self.rng.getstate()[2]}

    def load_state_dict(self, state: dict, device=None) -> None:
        images = state["images"]
        self.images = [img.unsqueeze(0).to(device) for img in images] if images.numel() else []
        self.rng.setstate((3, tuple(int(x) for x in state["rng"]), state["rng_pos"]))
