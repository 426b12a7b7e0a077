"""Start a local Visdom server (translate.visualize.viewer) in a subprocess and wait for it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]   # the folder that holds translate/
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_local_server(
    port: int,
    env_path: str | Path,
    host: str = "127.0.0.1",
    log_path: str | Path | None = None,
) -> subprocess.Popen:
    """Launch ``python -m translate.viewer`` on ``host:port``; its output goes to ``log_path``
    (default ``env_path/viewer.log``).  The caller stops it (``proc.terminate()``)."""
    env_path = Path(env_path)
    env_path.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else env_path / "viewer.log"
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_CHECKOUT), environ.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "translate.viewer", "--port", str(int(port)),
               "--host", host, "--env_path", str(env_path)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, cwd=_CHECKOUT, env=environ, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(
    port: int,
    timeout: float = 30.0,
    host: str = "127.0.0.1",
    proc: subprocess.Popen | None = None,
) -> bool:
    """True once an HTTP server answers on ``host:port``; False after ``timeout`` s
    (or as soon as ``proc``, when given, has exited)."""
    deadline = time.monotonic() + timeout
    url = f"http://{host}:{int(port)}/"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with _NO_PROXY.open(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True          # it answered, even if not with 200
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False
