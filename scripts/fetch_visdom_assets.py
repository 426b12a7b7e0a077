#!/usr/bin/env python3
"""Put Visdom's web assets in place from the npm registry (run by `make install`).

Visdom's server normally downloads its JavaScript, CSS and fonts from CDNs
each time it starts (visdom/server/build.py, ``download_scripts``), which fails
offline.  This script fetches the same files once, at install time, from the
same package versions on the npm registry (``npm pack`` into ``build/npm/``,
the integrity of every tarball checked against the hash pinned below) and
copies them to where visdom's static folder expects them.  It also writes
visdom's ``version.built`` stamp, so even ``python -m visdom.server`` finds
everything it would download, and ``.translate-assets.json``, which
``python -m translate.viewer`` checks.

Idempotent: when every file is already in place it returns at once.
    python scripts/fetch_visdom_assets.py [--static-dir DIR] [--cache-dir DIR] [--force]
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".translate-assets.json"

# npm package -> (sha512 integrity of its tarball, {place under static/: file in the package}).
# Versions are those that visdom 0.2.x downloads.  Plotly comes from plotly.js-dist-min, the
# registry's copy of plotly's own dist build; d3 v3 and d3-selection-multi v1 are the builds
# that d3js.org serves.  The odd names (fonts/classnames, the .svg#... font) are visdom's.
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "jquery@3.1.1": ("zuiWRmx65Kd1oFGdWLvAjbsumdOBFvs3r1vuqCyKFF79R7exBHNbiNEJ8LR+xkzgfxqBznMD/4Cv6PHXS6mvEw==",
                     {"js/jquery.min.js": "dist/jquery.min.js"}),
    "bootstrap@3.3.7": ("qcFaisBrcBhTFkz1IUnGDYnX6ZWfFzH8zOixUDtHW9Ip+r+7MfMFav2rzy7cIHc7rgIg7xjhWBoo1mS/U26j4g==", {
        "js/bootstrap.min.js": "dist/js/bootstrap.min.js",
        "css/bootstrap.min.css": "dist/css/bootstrap.min.css",
        **{f"fonts/glyphicons-halflings-regular.{ext}": f"dist/fonts/glyphicons-halflings-regular.{ext}"
           for ext in ("eot", "woff2", "woff", "ttf", "svg")},
        "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular":
            "dist/fonts/glyphicons-halflings-regular.svg"}),
    "react@16.2.0": ("ZmIomM7EE1DvPEnSFAHZn9Vs9zJl5A9H7el0EGTE6ZbW9FKe/14IYAlPbC8iH25YarEQxZL+E8VW7Mi7kfQrDQ==",
                     {"js/react-react.min.js": "umd/react.production.min.js"}),
    "react-dom@16.2.0": ("zpGAdwHVn9K0091d+hr+R0qrjoJ84cIBFL2uU60KvWBPfZ7LPSrfqviTxGHWN0sjPZb2hxWzMexwrvJdKePvjg==",
                         {"js/react-dom.min.js": "umd/react-dom.production.min.js"}),
    "react-modal@3.1.10": ("7b77AGWCkdg0YOf/qcYIGCpuwbxRwOA8P3UrUovk4grUNv+idOmHovJAx/Dcd3fuwHtgixxVjpcjVG60985MSA==",
                           {"js/react-modal.min.js": "dist/react-modal.min.js"}),
    "plotly.js-dist-min@2.11.1": ("F9WWNht0D3yBLZGHbLoJNfvplXvy+GUPSsA/lCbMuYd/UwzSu6Vmyprxlps9Einw1LDS1hYBrJeioK0lE3ieXA==",
                                  {"js/plotly-plotly.min.js": "plotly.min.js"}),
    "sjcl@1.0.7": ("xQbiwKfiAj6vyk44ANJ5RRymALRdRZOuRoKNYkWUU404p/RFXmMaay1Z5vRn30GJjkD+psox4Jd38jZojSuNYA==",
                   {"js/sjcl.js": "sjcl.js"}),
    "layout-bin-packer@1.4.0": ("dQOZnajbOBGIcS9YlzKrkRtMCGa2oEpyf1zGRn93suphSvPclJe54Sbgtb053GJ21DUk84IBzaeQvjn+Gb10fA==", {
        "js/layout_bin_packer.js": "dist/layout-bin-packer.js",
        "js/layout-bin-packer.js.map": "dist/layout-bin-packer.js.map"}),
    "d3@3.5.17": ("yFk/2idb8OHPKkbAL8QaOaqENNoMhIaSHZerk3oQsECwkObkCpJyjYwCe+OHiq6UEdhe1m8ZGARRRO3ljFjlKg==",
                  {"js/d3.v3.min.js": "d3.min.js"}),
    "d3-selection-multi@1.0.1": ("mEnRkJ6A+Otd1LuRPV3az+s/RLDmIEhuz/MnT21O2nPcWNH7wZotdIlRjMA4Wpr+n7AESQ5fD8v1J3nL2Mnw9g==",
                                 {"js/d3-selection-multi.v1.js": "build/d3-selection-multi.js"}),
    "save-svg-as-png@1.4.17": ("7QDaqJsVhdFPwviCxkgHiGm9omeaMBe1VKbHySWU6oFB2LtnGCcYS13eVoslUgq6VZC6Tjq/HddBd1K6p2PGpA==",
                               {"js/saveSvgAsPng.js": "lib/saveSvgAsPng.js"}),
    "react-resizable@1.4.6": ("4zLORO51u0/mlDsrVCAA4p266d+3mb2ZMNdiWOotAh/PdnfrRzZhgePmKE08PSQatXVIfMjmyD+Sapay8tmxdQ==",
                              {"css/react-resizable-styles.css": "css/styles.css"}),
    "react-grid-layout@0.16.3": ("ytP92EqUjqcFhGzvdeKrK610dQ04GdFwRCWtD6PoeL5wR3liETcFISO7k8RBqnosV86JtXf/DwIfrL0COLs0gg==",
                                 {"css/react-grid-layout-styles.css": "css/styles.css"}),
    "classnames@2.2.5": ("DTt3GhOUDKhh4ONwIJW4lmhyotQmV2LjNlGK/J2hkwUcqcbKkCLAdJPtxQnxnlc7SR3f1CEXCyMmc7WLUsWbNA==",
                         {"fonts/classnames": "index.js"}),
    "mathjax@2.7.5": ("OzsJNitEHAJB3y4IIlPCAvS0yoXwYjlo2Y4kmm9KQzyIBZt2d8yKRalby3uTRNN4fZQiGL2iMXjpdP1u2Rq2DQ==", {
        f"js/mathjax/2.7.5/{f}": f for f in (
            "MathJax.js", "config/Safe.js", "config/TeX-AMS-MML_HTMLorMML.js", "extensions/Safe.js",
            "jax/output/SVG/config.js", "jax/output/SVG/jax.js", "jax/output/SVG/fonts/TeX/fontdata.js",
            "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js")}),
}


def tarball_name(spec: str) -> str:
    """The file name `npm pack` gives a package (scoped names lose the @ and use -)."""
    name, version = spec.rsplit("@", 1)
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def integrity_ok(path: Path, expected: str) -> bool:
    digest = base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    return digest == expected


def visdom_dir() -> Path:
    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        sys.exit("fetch_visdom_assets: visdom is not installed in this Python "
                 f"({sys.executable}); install it first (make install does).")
    return Path(spec.origin).parent


def npm_pack(specs: list[str], cache: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("fetch_visdom_assets: `npm` was not found on PATH. Visdom's web page needs "
                 "JavaScript/CSS files that are taken from the npm registry; install Node.js "
                 "with npm (e.g. `apt-get install npm`) and run `make install` again. Training "
                 "and the HTML pages work without it; only the live Visdom page stays blank.")
    print(f"fetch_visdom_assets: npm pack {len(specs)} packages into {cache}", flush=True)
    result = subprocess.run([npm, "pack", "--silent", "--pack-destination", str(cache), *specs],
                            cwd=cache, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"fetch_visdom_assets: `npm pack` failed (is the npm registry reachable?):\n"
                 f"{result.stderr.strip()}")


def extract(tarball: Path, files: dict[str, str], static: Path) -> None:
    with tarfile.open(tarball, "r:gz") as archive:
        for target, inner in files.items():
            member = archive.getmember("package/" + inner)
            data = archive.extractfile(member).read()
            destination = static / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            temporary = destination.with_name(destination.name + ".part")
            temporary.write_bytes(data)
            temporary.replace(destination)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))   # options/ is imported from the checkout
    from options.commands import fetch_visdom_assets_parser
    parser = fetch_visdom_assets_parser(__doc__.split("\n\n")[0], root=ROOT)
    args = parser.parse_args(argv)

    package_dir = None if args.static_dir else visdom_dir()
    static = args.static_dir or package_dir / "static"
    targets = sorted(t for _, files in PACKAGES.values() for t in files)
    wanted = {"packages": sorted(PACKAGES), "files": targets}
    stamp = static / STAMP
    if not args.force and stamp.is_file() and all((static / t).is_file() for t in targets):
        try:
            if json.loads(stamp.read_text()) == wanted:
                print("fetch_visdom_assets: visdom's web assets are in place.")
                return 0
        except ValueError:
            pass

    cache = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    def usable(spec: str) -> bool:
        path = cache / tarball_name(spec)
        return path.is_file() and integrity_ok(path, PACKAGES[spec][0])
    missing = [spec for spec in PACKAGES if not usable(spec)]
    if missing:
        npm_pack(missing, cache)
    for spec, (integrity, files) in PACKAGES.items():
        tarball = cache / tarball_name(spec)
        if not tarball.is_file():
            sys.exit(f"fetch_visdom_assets: npm did not produce {tarball}")
        if not integrity_ok(tarball, integrity):
            tarball.unlink()
            sys.exit(f"fetch_visdom_assets: {tarball.name} does not match its pinned sha512; "
                     "it was removed, run again.")
        extract(tarball, files, static)

    version_file = (package_dir or static.parent) / "VERSION"
    if version_file.is_file():  # visdom's own "already downloaded" marker
        (static / "version.built").write_text(version_file.read_text().strip())
    stamp.write_text(json.dumps(wanted, indent=1))
    print(f"fetch_visdom_assets: {len(targets)} files from {len(PACKAGES)} npm packages "
          f"are in {static}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
