"""The project's Visdom server listens on 127.0.0.1 unless told otherwise."""
import subprocess
import sys
from pathlib import Path

import pytest

from translate.visualize.server import free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses of sockets listening on ``port``, read from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_viewer_binds_to_loopback_by_default(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "translate.viewer", "--port", str(port),
                             "--env_path", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_up(port, timeout=60, proc=proc), "viewer did not start"
        addresses = _listening_addresses(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1, little-endian hex; no 0.0.0.0 or ::
    finally:
        proc.terminate()
        proc.wait(timeout=20)
