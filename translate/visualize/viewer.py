"""Run a real Visdom server that works offline.

    python -m translate.viewer --port 8097 [--host 127.0.0.1] [--env_path DIR]

Visdom's own entry point (``python -m visdom.server``) first downloads its
JavaScript, CSS and fonts from CDNs and fails without internet.  Here the
server's application is started directly, without that step; the assets are
put in place once at install time by ``scripts/fetch_visdom_assets.py`` (from
the npm registry).  The server binds to 127.0.0.1 unless told otherwise.

It also works around Tornado >= 6.6, which answers the index page with 403:
visdom's page template asks for ``static_url("../user/style.css")``, a path
outside the static folder that Tornado now refuses to version.  The static
handler used here leaves such a URL unversioned instead.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

ASSET_STAMP = ".translate-assets.json"   # written by scripts/fetch_visdom_assets.py


def visdom_static_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise SystemExit("visdom is not installed: run `make install`.")
    return Path(spec.origin).parent / "static"


def missing_assets(static_dir: Path | None = None) -> list[str]:
    """Asset files named by the install-time stamp that are absent ([] when all present)."""
    static_dir = static_dir or visdom_static_dir()
    stamp = static_dir / ASSET_STAMP
    try:
        files = json.loads(stamp.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return [ASSET_STAMP]
    return [f for f in files if not (static_dir / f).is_file()]


def _install_static_url_fix() -> None:
    from tornado.web import HTTPError, StaticFileHandler
    from visdom.server import app as visdom_app

    class LenientStaticFileHandler(StaticFileHandler):
        @classmethod
        def get_version(cls, settings, path):
            try:
                return super().get_version(settings, path)
            except HTTPError:   # a path outside the static root: serve it unversioned
                return None

    visdom_app.tornado_settings["static_handler_class"] = LenientStaticFileHandler


def build_app(env_path: str | Path, port: int):
    """Visdom's tornado Application, with the static-URL fix installed."""
    _install_static_url_fix()
    from visdom.server.app import Application

    env_dir = os.path.join(os.path.abspath(os.path.expanduser(str(env_path))), "")
    os.makedirs(env_dir, exist_ok=True)
    return Application(port=port, base_url="", env_path=env_dir)


async def _serve(host: str, port: int, env_path: str | Path) -> None:
    app = build_app(env_path, port)
    app.listen(port, address=host, max_buffer_size=1024 ** 3)
    print(f"Visdom is serving http://{host}:{port} (envs saved in {env_path})", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translate.viewer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--env_path", default=os.path.join(os.path.expanduser("~"), ".visdom"),
                        help="folder where visdom saves and reloads its environments")
    parser.add_argument("--logging_level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.logging_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # The visdom package imports torch when it can, only to accept tensors in its client.
    # The server never sees one: keep torch out of this process (starts seconds sooner).
    sys.modules.setdefault("torch", None)

    missing = missing_assets()
    if missing:
        print("warning: visdom's web assets are not installed (missing: "
              f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); the server runs and "
              "takes data, but the page stays blank. Run `python scripts/fetch_visdom_assets.py` "
              "(part of `make install`).", file=sys.stderr, flush=True)
    try:
        asyncio.run(_serve(args.host, args.port, args.env_path))
    except KeyboardInterrupt:
        pass
    return 0

