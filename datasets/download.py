"""Download the standard pix2pix / CycleGAN datasets into the classic layouts.

    python -m datasets.download facades                  # pix2pix: DIR/facades/{train,val,test}
    python -m datasets.download horse2zebra              # CycleGAN: DIR/horse2zebra/{trainA,...}
    python -m datasets.download maps --kind cyclegan     # names that exist in both collections

The archives come from the authors' server; ``--base_url`` or the environment
variable TRANSLATE_DATASETS_URL points at a mirror (same paths below it).  A
download is written to a temporary file and renamed, then unpacked into a
temporary folder, checked, and only then moved into place, so an interrupted
run never leaves something that looks like a dataset.
"""
from __future__ import annotations

import http.client
import os
from collections.abc import Sequence
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

from tqdm import tqdm

from .errors import DataError

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu"
PIX2PIX = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
CYCLEGAN = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo",
            "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes",
            "facades", "iphone2dslr_flower", "ae_photos", "grumpifycat")
# kind -> (URL path pattern, folders the unpacked dataset must contain)
KINDS = {
    "pix2pix": ("pix2pix/datasets/{name}.tar.gz", ("train",)),
    "cyclegan": ("cyclegan/datasets/{name}.zip", ("trainA", "trainB", "testA", "testB")),
}


def default_root() -> str:
    """<repo>/datasets/data, which git ignores."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def pick_kind(name: str, kind: str | None, names: dict[str, Sequence[str]], noun: str) -> str:
    """The collection (pix2pix or cyclegan) ``name`` is taken from: pix2pix for the names it has
    unless ``kind`` says otherwise.  Raises LookupError with a message naming the fix; the datasets
    and the pretrained generators share this rule."""
    if kind is None:
        kind = "pix2pix" if name in names["pix2pix"] else "cyclegan"
    if kind not in names:
        raise LookupError(f"unknown --kind {kind!r}; choose pix2pix or cyclegan")
    if name not in names[kind]:
        other = "cyclegan" if kind == "pix2pix" else "pix2pix"
        if name in names[other]:
            raise LookupError(f"{name} is a {other} {noun}, not {kind}; use --kind {other}")
        raise LookupError(f"unknown {noun} {name!r}")
    return kind


def resolve_kind(name: str, kind: str | None) -> str:
    """pix2pix for the paired names unless --kind says otherwise; errors list valid names."""
    try:
        return pick_kind(name, kind, {"pix2pix": PIX2PIX, "cyclegan": CYCLEGAN}, "dataset")
    except LookupError as err:
        listing = (f". pix2pix names: {', '.join(PIX2PIX)}. CycleGAN names: {', '.join(CYCLEGAN)}."
                   if str(err).startswith("unknown dataset") else "")
        raise DataError(f"{err}{listing}") from None


def missing_folders(folder: str, kind: str) -> list[str]:
    return [os.path.join(folder, sub) for sub in KINDS[kind][1]
            if not os.path.isdir(os.path.join(folder, sub))]


DATASETS_HINT = "Check the network, or pass --base_url / set TRANSLATE_DATASETS_URL to a mirror."


def fetch(url: str, dest: str, *, resume: bool = False, hint: str = DATASETS_HINT) -> None:
    """Stream ``url`` to ``dest`` with a progress bar, via the temporary file ``dest.part``.

    A transfer that ends before the announced length is an error, not a file.
    With ``resume``, a ``dest.part`` that an interrupted call left behind is
    continued with an HTTP Range request (from the start if the server ignores
    it), and an interrupted transfer keeps its ``.part`` for the next call.
    """
    tmp = dest + ".part"
    have = os.path.getsize(tmp) if resume and os.path.exists(tmp) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    keep = False
    try:
        try:
            response = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:
                raise
            os.remove(tmp)           # the part does not fit the file any more: start over
            have, response = 0, urllib.request.urlopen(url, timeout=60)
        with response:
            if have and response.status != 206:
                have = 0             # the server sends the whole file
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(tmp, "ab" if have else "wb") as out, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=os.path.basename(dest), file=sys.stderr) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            got = os.path.getsize(tmp)
            if total is not None and got < total:
                raise http.client.IncompleteRead(b"", total - got)
        os.replace(tmp, dest)
    except urllib.error.HTTPError as err:
        raise DataError(f"could not download {url}: HTTP {err.code} {err.reason}. {hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        keep = resume and os.path.exists(tmp)
        again = " Run the same command again to resume." if keep else ""
        if isinstance(err, http.client.IncompleteRead):
            err = f"the transfer stopped {err.expected} bytes short of the end"
        raise DataError(f"could not download {url}: {err}.{again} {hint}") from None
    finally:
        if not keep and os.path.exists(tmp):
            os.remove(tmp)


def _inside(base: str, member: str) -> bool:
    target = os.path.realpath(os.path.join(base, member))
    return os.path.commonpath([os.path.realpath(base), target]) == os.path.realpath(base)


def unpack(archive: str, target: str) -> None:
    """Unpack a .tar.gz or .zip into ``target``; refuse members that would land outside it."""
    try:
        if archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                bad = [n for n in zf.namelist() if os.path.isabs(n) or not _inside(target, n)]
                if bad:
                    raise DataError(f"{archive} has entries outside its folder ({bad[0]}); "
                                    "refusing to unpack it.")
                zf.extractall(target)
            return
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            # Links could point anywhere, and datasets never need them.
            bad = [m.name for m in members if not (m.isfile() or m.isdir())
                   or os.path.isabs(m.name) or not _inside(target, m.name)]
            if bad:
                raise DataError(f"{archive} has links or entries outside its folder "
                                f"({bad[0]}); refusing to unpack it.")
            if hasattr(tarfile, "data_filter"):    # Python >= 3.12 and recent backports
                tf.extractall(target, members=members, filter="data")
            else:
                tf.extractall(target, members=members)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{archive} is not a valid archive ({err}); delete it and "
                        "download again.") from None


def download(name: str, root: str | None = None, *, kind: str | None = None,
             base_url: str | None = None) -> str:
    """Download dataset ``name`` into ``root/name`` (if not there yet); return that folder."""
    kind = resolve_kind(name, kind)
    root = os.path.abspath(root or default_root())
    final = os.path.join(root, name)
    if os.path.isdir(final) and not missing_folders(final, kind):
        print(f"{final} is already there", file=sys.stderr)
        return final
    base = (base_url or os.environ.get("TRANSLATE_DATASETS_URL") or DEFAULT_BASE_URL).rstrip("/")
    pattern = KINDS[kind][0]
    url = f"{base}/{pattern.format(name=name)}"
    os.makedirs(root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{name}-", dir=root)
    try:
        archive = os.path.join(work, os.path.basename(pattern.format(name=name)))
        fetch(url, archive)
        unpacked = os.path.join(work, "unpacked")
        unpack(archive, unpacked)
        folder = os.path.join(unpacked, name)
        missing = missing_folders(folder, kind)
        if missing:
            rel = [os.path.relpath(m, unpacked) for m in missing]
            raise DataError(f"{url} did not contain the expected {kind} layout: missing "
                            f"{', '.join(rel)}. Is the archive or --kind right?")
        # pix2pix and CycleGAN versions of a name share root/name (train/ vs trainA/...).
        os.makedirs(final, exist_ok=True)
        for entry in sorted(os.listdir(folder)):
            dest = os.path.join(final, entry)
            if not os.path.exists(dest):
                os.replace(os.path.join(folder, entry), dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def build_parser():
    from options.commands import download_parser   # the checkout's options/, as datasets/ is
    return download_parser(__doc__.split("\n\n")[0], kinds=KINDS, default_base_url=DEFAULT_BASE_URL)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(download(args.name, args.root, kind=args.kind, base_url=args.base_url))
    except DataError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
