"""Translate every image below a folder with a trained generator (``python -m translate``).

The stages overlap, so the generator rarely waits:

    list files  ->  DataLoader workers decode (EXIF, 16-bit, grayscale: datasets.image_io)
                ->  batches of same-size images  ->  generator (inference mode, autocast,
                    channels-last, optional torch.compile; padded or tiled, see tiling.py)
                ->  writer threads encode and write atomically  ->  OUTDIR mirrors DIR

Nothing is lost silently: a file that does not decode, translate or write is
listed with its reason in OUTDIR/failed.txt and the others go on (workers
never raise: an item is a tensor or an error record); symlinks that lead out
of DIR are skipped with a reason.  Outputs are written under a temporary name
and renamed, so an interrupted run leaves no half-written image and
``skip_existing`` resumes it.  Outputs have 8 bits per channel, also for 16-bit inputs.
"""
from __future__ import annotations

import importlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from translate import stop_signals
from translate._checkout import import_from_checkout
from translate.visualize.html import write_results_page
from translate import files

import_from_checkout("datasets")
image_io = importlib.import_module("datasets.image_io")
transforms = importlib.import_module("datasets.transforms")
data_loader = importlib.import_module("datasets.loader")

# Output suffix -> PIL format (translate.files).  ``save_format same`` keeps the input's suffix.
WRITERS = files.IMAGE_FORMATS
SAVE_FORMATS = ("same", "png", "jpg", "webp")
PREPROCESS = ("none", "resize", "scale_width")
MAX_QUEUED_VALUES = 64 * 2**20   # translated values waiting for the writers (256 MB of float32)


class FolderError(ValueError):
    """A problem with the folders or options as a whole; the message says what to change."""


@dataclass(frozen=True)
class FolderOptions:
    input_dir: str
    output_dir: str
    save_format: str = "same"
    quality: int = 95                 # JPEG / WebP
    batch_size: int = 1
    num_workers: int = 2              # decoding processes
    num_writers: int = 2              # encoding threads
    preprocess: str = "none"          # none: own size | resize: load_size square | scale_width
    load_size: int = 256
    skip_existing: bool = False
    html: bool = False
    progress: bool = True


@dataclass
class Job:
    source: Path      # as found below input_dir
    relative: Path    # ... relative to input_dir
    target: Path      # its output file


@dataclass
class Summary:
    translated: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: int | None = None   # the signal (SIGINT/SIGTERM) that stopped the run early
    left: int = 0                    # images not reached because of it


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def output_path(relative: Path, output_dir: Path, save_format: str) -> Path:
    suffix = relative.suffix.lower() if save_format == "same" else "." + save_format
    if suffix not in WRITERS:
        suffix = ".png"
    return output_dir / relative.with_suffix(suffix)


def plan_jobs(opts: FolderOptions) -> tuple[list[Job], list[tuple[str, str]]]:
    """Every image below input_dir with its output path; plus (path, reason) of skipped ones."""
    root, out_root = Path(opts.input_dir), Path(opts.output_dir)
    if not root.is_dir():
        raise FolderError(f"input folder {root} does not exist or is not a folder")
    real_root, real_out = os.path.realpath(root), os.path.realpath(out_root)
    if real_root == real_out:
        raise FolderError("--output must differ from the input folder (inputs would be overwritten)")
    jobs, skipped, taken, seen_dirs = [], [], {}, set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        outside = not _inside(real_dir, real_root)
        if outside or real_dir in seen_dirs or _inside(real_dir, real_out):
            # A link out of DIR, a symlink loop, or OUTDIR inside DIR (do not translate outputs).
            skipped += [(dirpath, "folder symlink points outside the input folder")] if outside else []
            dirnames[:] = []
            continue
        seen_dirs.add(real_dir)
        dirnames.sort()
        for name in sorted(filenames):
            source = Path(dirpath) / name
            if not image_io.is_image_file(name):
                continue
            if not _inside(os.path.realpath(source), real_root):
                skipped.append((str(source), "symlink points outside the input folder"))
                continue
            relative = source.relative_to(root)
            target = output_path(relative, out_root, opts.save_format)
            if not _inside(os.path.realpath(target), real_out):
                skipped.append((str(source), f"its output {target} would land outside --output"))
            elif target in taken:
                skipped.append((str(source), f"same output file as {taken[target]}; use --save_format same"))
            else:
                taken[target] = source
                jobs.append(Job(source, relative, target))
    if not jobs and not skipped:
        raise FolderError(f"no images below {root} (looked for {' '.join(image_io.IMG_EXTENSIONS)})")
    return jobs, skipped


def remove_stale_temporaries(jobs: list[Job]) -> None:
    """Delete the temporary files an interrupted run left beside our outputs.

    Outputs are written as ``.<name>.<random>.tmp`` and renamed (translate.files),
    so a killed run leaves at most such files, never a half-written image.
    """
    names: dict[Path, set[str]] = {}
    for job in jobs:
        names.setdefault(job.target.parent, set()).add(job.target.name)
    for folder, outputs in names.items():
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if tmp.name[1:].rsplit(".", 2)[0] in outputs:
                    tmp.unlink(missing_ok=True)


class DecodeDataset(Dataset):
    """Item i -> (i, tensor in [-1, 1] or None, error text or None).  Never raises."""

    def __init__(self, paths: list[str], channels: int, preprocess: str = "none", load_size: int = 256):
        self.paths, self.channels = paths, channels
        self.resize = None
        if preprocess != "none":  # the classic test-time resizing, from datasets.transforms
            mode = "resize_and_crop" if preprocess == "resize" else "scale_width"
            # size_multiple 1: no rounding here, the Runner pads to what the generator needs.
            self.resize = SimpleNamespace(preprocess=mode, load_size=load_size, crop_size=1 if
                                          mode == "scale_width" else load_size, no_flip=True,
                                          size_multiple=1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            x = image_io.to_tensor(image_io.load_image(self.paths[index]), self.channels)
            if self.resize is not None:
                return index, transforms.apply(x, self.resize, transforms.Params()), None
            return index, x.mul_(2.0).sub_(1.0), None
        except Exception as err:  # noqa: BLE001 - reported per file, must not kill the worker
            reason = str(err) or type(err).__name__
            prefix = f"cannot decode image {self.paths[index]}: "  # failed.txt names the file already
            return index, None, reason[len(prefix):] if reason.startswith(prefix) else reason


def _header_size(path: str) -> tuple[int, int] | None:
    """(H, W) as decoding will produce it (EXIF rotation included), from the header only."""
    try:
        with image_io.open_image(path) as img:
            w, h = img.size
            return (w, h) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (h, w)
    except Exception:  # noqa: BLE001 - the worker reports the real error
        return None


def size_batches(paths: list[str], batch_size: int, same_size: bool = False) -> list[list[int]]:
    """Index batches of images with the same (H, W), in file order of each size's first image."""
    if batch_size <= 1:
        return [[i] for i in range(len(paths))]
    groups: dict = {}
    for i, path in enumerate(paths):
        key = "all" if same_size else (_header_size(path) or ("unknown", i))
        groups.setdefault(key, []).append(i)
    return [g[k:k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]


def _as_list(items):  # collate_fn: records stay separate (errors, sizes); stacked in the main process
    return items


def to_uint8_array(image: torch.Tensor) -> np.ndarray:
    """C x H x W in [-1, 1] -> H x W (one channel) or H x W x 3 uint8, as outputs are written."""
    array = ((image.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return array[0].numpy() if array.shape[0] == 1 else np.ascontiguousarray(array[:3].permute(1, 2, 0).numpy())


def encode(image: torch.Tensor, target: Path, quality: int) -> None:
    """C x H x W in [-1, 1] -> 8-bit file, written under a temporary name and renamed."""
    files.write_image(target, to_uint8_array(image), quality)


def translate_folder(runner, opts: FolderOptions, in_channels: int) -> Summary:
    """Translate ``opts.input_dir`` into ``opts.output_dir`` with ``runner`` (a tiling.Runner).

    The runner holds the generator and how it runs (device, precision, tiles).
    """
    start = time.perf_counter()
    all_jobs, skipped = plan_jobs(opts)
    summary = Summary(skipped=skipped)
    jobs = all_jobs
    if opts.skip_existing:
        summary.skipped += [(str(j.source), "output exists") for j in jobs if j.target.exists()]
        jobs = [j for j in jobs if not j.target.exists()]
    remove_stale_temporaries(jobs)
    paths = [str(j.source) for j in jobs]
    dataset = DecodeDataset(paths, in_channels, opts.preprocess, opts.load_size)
    batches = size_batches(paths, opts.batch_size, same_size=opts.preprocess == "resize")
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=opts.num_workers,
                        collate_fn=_as_list, pin_memory=runner.device.type == "cuda",
                        worker_init_fn=data_loader.ignore_stop_signals)
    # Outputs waiting for a writer: bounded in count and in size (tiled images are large).
    pending: deque = deque()
    max_pending, queued = 2 * max(1, opts.num_writers) + opts.batch_size, [0]
    bar = tqdm(total=len(jobs), unit="img", desc="translating", disable=not opts.progress)

    def finish(index, future, values) -> None:
        queued[0] -= values
        try:
            future.result()
            summary.translated += 1
        except Exception as err:  # noqa: BLE001 - a write error (disk full, ...) fails one file
            summary.failed.append((paths[index], f"cannot write {jobs[index].target}: {err}"))
        bar.update(1)

    # A stop signal ends the loop between batches; the writes under way complete (each output is
    # written aside and renamed) and the reports say what is done and what is left.
    with stop_signals.deferred("stopping after this batch; the images being written are finished first",
                               "already stopping: waiting for the images being written") as stop, \
            ThreadPoolExecutor(max(1, opts.num_writers), thread_name_prefix="writer") as pool:
        for records in loader:
            if stop.signum is not None:
                summary.interrupted = stop.signum
                break
            by_shape: dict = {}
            for index, image, error in records:
                if error is not None:
                    summary.failed.append((paths[index], error))
                    bar.update(1)
                else:
                    by_shape.setdefault(tuple(image.shape), []).append((index, image))
            for group in by_shape.values():
                indices = [i for i, _ in group]
                try:
                    out = runner(torch.stack([t for _, t in group]).to(runner.device, non_blocking=True))
                except Exception as err:  # noqa: BLE001 - out of memory, a shape the net refuses, ...
                    # Any error of one batch fails its files only (KeyboardInterrupt is no Exception).
                    hint = "; try --tile 512" if "memory" in str(err).lower() else ""
                    reason = _one_line(str(err) or type(err).__name__)
                    summary.failed += [(paths[i], f"translation failed: {reason}{hint}") for i in indices]
                    bar.update(len(indices))
                    continue
                for k, index in enumerate(indices):
                    pending.append((index, pool.submit(encode, out[k], jobs[index].target, opts.quality),
                                    out[k].numel()))
                    queued[0] += out[k].numel()
                    while pending and (len(pending) > max_pending or queued[0] > MAX_QUEUED_VALUES
                                       or pending[0][1].done()):
                        finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
        pool.shutdown()
        bar.close()
        summary.left = len(jobs) - summary.translated - len(summary.failed)
        summary.seconds = time.perf_counter() - start
        write_reports(summary, opts, all_jobs)   # still under the deferred signals: failed.txt is written
    return summary


def _one_line(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").split())


def write_reports(summary: Summary, opts: FolderOptions, jobs: list[Job]) -> None:
    """OUTDIR/failed.txt (path TAB reason; removed when nothing failed) and the --html page.

    The page pairs every input whose output exists (also from earlier runs) with that output.
    """
    out_root = Path(opts.output_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    failed_txt = out_root / "failed.txt"
    if summary.failed:
        files.write_text(failed_txt, "".join(f"{_one_line(p)}\t{_one_line(r)}\n" for p, r in summary.failed))
    elif failed_txt.exists() and summary.interrupted is None:
        failed_txt.unlink()  # left by an earlier run whose failures are now resolved
    if opts.html:
        rows = []
        for job in jobs:
            if job.target.exists():
                source = os.path.relpath(os.path.abspath(job.source), os.path.abspath(out_root))
                output = job.target.relative_to(out_root)
                rows.append((job.relative.as_posix(), [("input", source), ("output", output.as_posix())]))
        write_results_page(out_root, f"Translated {opts.input_dir}", rows)
