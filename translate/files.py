"""Crash-safe writes that follow the umask, image encoding, and checks that output places can be written.

Every file we write goes to a temporary name in its destination folder, is
flushed to disk (fsync) and then renamed over the destination, so a reader or a
crash (SIGKILL, power loss) sees either the old file or the whole new one.
Checkpoint folders are staged the same way (``staged_directory``).

Permissions are those of ordinary ``open()`` and ``mkdir``: files 0666 and
folders 0777, less the umask (and any default ACL of the folder).  The kernel
applies the umask when the temporary name is created; we read the resulting
mode back from it instead of calling ``os.umask``, which would briefly change
the umask of every thread in the process (the folder translation writes from
several threads).

Images are encoded in one place (``encode_image``; ``write_image`` writes one
atomically): the folder translation's outputs and the training / results pages'
pictures are the same bytes for the same pixels.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

# Image suffix -> PIL format.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM"}
LOSSY = ("JPEG", "WEBP")   # the formats --quality applies to


class OutputError(ValueError):
    """An output place that cannot be written; the message names the flag to change."""


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _new_temp_file(path: Path) -> tuple[int, Path, int]:
    """Create ``.<name>.<random>.tmp`` beside ``path``: (fd, temp path, its umask-given mode)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return fd, tmp, os.fstat(fd).st_mode & 0o7777


def write_with(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Atomically write ``path`` by calling ``write(temp_name)`` (for libraries that take a file name).

    The library may create the file with its own mode (safetensors makes 0600);
    the mode an ordinary ``open()`` would give is restored before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp, mode = _new_temp_file(path)
    os.close(fd)

    def fill() -> None:
        write(str(tmp))
        os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return _fill_then_rename(tmp, path, fill)


def _fill_then_rename(tmp: Path, path: Path, fill: Callable[[], None]) -> Path:
    """Run ``fill`` (which writes and fsyncs ``tmp``), rename over ``path``; no temp file left on failure."""
    try:
        fill()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically replace ``path`` by ``data``: a reader sees the old or the new bytes, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp, _ = _new_temp_file(path)

    def fill() -> None:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return _fill_then_rename(tmp, path, fill)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` as UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def image_format(path: str | os.PathLike) -> str:
    """The PIL format of ``path``'s suffix; ValueError for a suffix we do not write."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image suffix {Path(path).suffix!r} (use one of {sorted(IMAGE_FORMATS)})")
    return fmt


def encode_image(pixels: np.ndarray, fmt: str, quality: int | None = None) -> bytes:
    """H x W (gray) or H x W x 3 uint8 -> the bytes of a ``fmt`` file (PNG, JPEG, ...).

    ``quality`` applies to JPEG / WebP; None keeps PIL's default (JPEG 75, WebP 80).
    The whole file is encoded in memory, so it is written only once complete.
    """
    options = {"quality": quality} if quality is not None and fmt in LOSSY else {}
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_image(path: str | os.PathLike, pixels: np.ndarray, quality: int | None = None) -> Path:
    """Encode ``pixels`` in the format of ``path``'s suffix and write it atomically."""
    return write_bytes(path, encode_image(pixels, image_format(path), quality))


def make_staging_folder(final: Path) -> Path:
    """An empty ``.<name>.<random>`` folder beside ``final``, with mkdir's umask-given mode."""
    while True:
        staging = final.with_name(f".{final.name}.{secrets.token_hex(4)}")
        try:
            staging.mkdir(0o777)
        except FileExistsError:
            continue
        return staging


def swap_in_folder(staging: Path, final: Path) -> None:
    """Replace folder ``final`` by ``staging``; at every instant one complete copy exists.

    The previous folder is parked as ``<final>.old`` during the two renames, so a
    crash between them leaves it there for a reader to fall back on.
    """
    for child in staging.iterdir():   # the files' data on disk before the names point at it
        fd = os.open(child, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_folder(staging)
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    _fsync_folder(final.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Fill the yielded folder; when the block ends without an error it replaces ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging_folder(final)
    try:
        yield staging
        swap_in_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ---- writability checks, before any work starts ----------------------------------

def _nearest_existing(folder: Path, flag: str, shown: Path) -> Path:
    """The deepest existing ancestor of ``folder`` (itself included); it must be a folder."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise OutputError(f"{flag} {shown}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        what = "a file" if probe.is_file() else "not a folder"
        if probe == shown:
            raise OutputError(f"{flag} {shown} is {what}; give a folder")
        raise OutputError(f"{flag} {shown} cannot be created: {probe} is {what}; give another place")
    return probe


def check_writable_folder(path: str | os.PathLike, flag: str) -> None:
    """Fail with an OutputError naming ``flag`` unless a file can be created in folder ``path``.

    Nothing is created for good: where ``path`` does not exist yet, its nearest
    existing ancestor must accept a new entry.  A probe file is really created
    and removed, so read-only mounts and ACLs are caught too (permission bits
    alone say nothing for root).
    """
    path = Path(os.path.abspath(os.fspath(path)))
    _probe(_nearest_existing(path, flag, path), flag, path)


def check_writable_file(path: str | os.PathLike, flag: str) -> None:
    """Like check_writable_folder, for a file to be (re)written at ``path``."""
    path = Path(os.path.abspath(os.fspath(path)))
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name")
    _probe(_nearest_existing(path.parent, flag, path), flag, path)


def _probe(existing: Path, flag: str, shown: Path) -> None:
    """Really create and remove a file in ``existing``."""
    try:
        fd, tmp, _ = _new_temp_file(existing / ".write-probe")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        where = "" if existing == shown else f" (in {existing})"
        raise OutputError(f"{flag} {shown}: cannot write there: {reason}{where}; "
                          f"choose a writable place") from None
