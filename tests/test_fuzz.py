"""Hostile input, fuzzed with hypothesis: every case is a clear error or a loaded image.

Never a hang, never a crash or stack trace from inside a DataLoader worker.
"""
import io
import os
import re
import signal
import struct
import zlib
from contextlib import contextmanager, redirect_stderr

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import datasets
from options import OptionsError, parse_test_options, parse_train_options
from options.config import DataConfig

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@contextmanager
def time_limit(seconds: int):
    def fail(*_):
        raise AssertionError(f"hung for more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _png_bytes(mode: str, w: int, h: int) -> bytes:
    rng = np.random.default_rng(w * 1000 + h)
    if mode in ("I;16", "I"):
        img = Image.fromarray(rng.integers(0, 65535, (h, w)).astype(np.uint16))  # mode I;16
    elif mode == "1":
        img = Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    else:
        img = Image.new(mode, (w, h), color=None)
    buf = io.BytesIO()
    img.save(buf, "PNG" if mode != "CMYK" else "TIFF")
    return buf.getvalue()


def _bomb_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w x h pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


FILES = st.one_of(
    st.builds(_png_bytes, st.sampled_from(["1", "L", "P", "LA", "RGB", "RGBA", "CMYK", "I;16"]),
              st.integers(1, 40), st.integers(1, 40)),
    st.builds(lambda b, cut: b[:cut], st.builds(_png_bytes, st.just("RGB"), st.just(32), st.just(16)),
              st.integers(0, 200)),                               # truncated, zero-byte
    st.binary(max_size=300),                                      # garbage
    st.builds(_bomb_png, st.integers(20_000, 60_000), st.integers(20_000, 60_000)),
)
NAMES = st.sampled_from([b"plain.png", b"caf\xe9.png", b"\xff\xfe.png", b"sp ace#?.png", b"<script>.png"])


def _cfg(root, mode, workers, **kw):
    return DataConfig(dataroot=str(root), dataset_mode=mode, phase="train", num_threads=workers,
                      load_size=16, crop_size=16, **kw)


@FUZZ
@given(files=st.lists(st.tuples(NAMES, FILES), min_size=1, max_size=4), workers=st.sampled_from([0, 1]))
def test_fuzzed_folders_load_or_fail_cleanly(tmp_path_factory, files, workers):
    root = tmp_path_factory.mktemp("fuzz")
    folder = root / "train"
    folder.mkdir()
    for i, (name, data) in enumerate(files):
        with open(os.path.join(os.fsencode(folder), b"%d_" % i + name), "wb") as f:
            f.write(data)
    with time_limit(60):
        try:
            ds = datasets.build_dataset(_cfg(root, "aligned", workers), is_train=True)
            loader = datasets.build_dataloader(ds, _cfg(root, "aligned", workers), is_train=True)
            for batch in loader:
                assert batch["A"].shape[-2:] == (16, 16) and batch["A"].isfinite().all()
        except datasets.DataError as err:
            assert "Traceback" not in str(err) and str(folder) in str(err)


def test_aligned_image_with_odd_width_is_split_evenly(tmp_path):
    (tmp_path / "train").mkdir()
    Image.new("RGB", (33, 10)).save(tmp_path / "train" / "odd.png")
    item = datasets.build_dataset(_cfg(tmp_path, "aligned", 0, preprocess="none", size_multiple=1),
                                  is_train=False)[0]
    assert item["A"].shape == item["B"].shape == (3, 10, 16)


def test_decompression_bomb_is_refused_with_a_message(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "bomb.png").write_bytes(_bomb_png(50_000, 50_000))
    with pytest.raises(datasets.DataError, match="bomb.png.*limit"):
        datasets.build_dataset(_cfg(tmp_path, "aligned", 0), is_train=True)


FLAG_VALUES = {
    "--model": st.sampled_from(["cycle_gan", "pix2pix", "csgan", "test", "x"]),
    "--netG": st.sampled_from(["resnet_9blocks", "unet_256", "unet_64", "vit_siren", "nope"]),
    "--netD": st.sampled_from(["basic", "pixel", "n_layers", "nope"]),
    "--norm": st.sampled_from(["instance", "batch", "none", "bogus"]),
    "--crop_size": st.integers(-5, 600).map(str), "--load_size": st.integers(-5, 600).map(str),
    "--batch_size": st.integers(-2, 8).map(str), "--input_nc": st.integers(0, 5).map(str),
    "--output_nc": st.integers(0, 5).map(str), "--lambda_identity": st.floats(-1, 2).map(str),
    "--lambda_L1": st.floats(-1, 200).map(str), "--dataset_mode": st.sampled_from(["aligned", "unaligned", "single"]),
    "--preprocess": st.sampled_from(["resize_and_crop", "crop", "none", "scale_width", "zoom"]),
    "--gpu_ids": st.sampled_from(["-1", "0", "0,1", "a,b", ""]), "--diffaugment": st.text(max_size=12),
    "--max_dataset_size": st.sampled_from(["inf", "3", "-1", "x"]), "--lr": st.text(max_size=5),
}


@FUZZ
@given(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=6, unique=True).flatmap(
    lambda keys: st.tuples(*[st.tuples(st.just(k), FLAG_VALUES[k]) for k in keys])),
    st.booleans())
def test_fuzzed_flags_give_a_config_or_a_clear_error(pairs, for_test):
    """A clear error is one line that names a flag of the command line (the one to change)."""
    argv = [part for pair in pairs for part in pair]
    parse = parse_test_options if for_test else parse_train_options
    stderr = io.StringIO()
    try:
        with redirect_stderr(stderr):
            parse(argv)
    except OptionsError as err:
        message = str(err)
    except SystemExit as exit_:
        assert exit_.code == 2  # argparse's own error for a bad value
        message = stderr.getvalue()
    else:
        return
    # One line: a line break may only come from a given value the message repeats verbatim.
    own_text = message
    for piece in sorted({p.strip() for _, value in pairs for p in [value, *value.split(",")]}, key=len, reverse=True):
        if "\n" in piece:
            own_text = own_text.replace(piece, "<value>")
    assert "\n" not in own_text.strip(), f"{argv}: {message!r}"
    # Names a given flag as a whole word (--lr is not named by --lr_policy).
    given_flags = [flag for flag, _ in pairs]
    assert any(re.search(re.escape(flag) + r"(?![\w-])", message) for flag in given_flags), f"{argv}: {message}"
