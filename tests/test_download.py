"""Tests for datasets/download.py against a local HTTP server started here.

The server (http.server on 127.0.0.1, a free port, a background thread) serves
small archives built by the tests in the same paths as the real host.
"""
from __future__ import annotations

import functools
import http.server
import io
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # datasets/ lives in the checkout

from datasets import DataError  # noqa: E402
from datasets.download import download, main  # noqa: E402

PNG = bytes.fromhex(  # a valid 1x1 PNG, enough to stand in for an image
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL); stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def make_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def make_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def unpaired(name: str, sides=("trainA", "trainB", "testA", "testB")) -> dict[str, bytes]:
    return {f"{name}/{side}/1.png": PNG for side in sides}


def test_pix2pix_tar_via_environment_variable(server, tmp_path, monkeypatch, capsys):
    www, url = server
    make_tar(www / "pix2pix/datasets/facades.tar.gz",
             {"facades/train/1.jpg": PNG, "facades/test/1.jpg": PNG, "facades/val/1.jpg": PNG})
    monkeypatch.setenv("TRANSLATE_DATASETS_URL", url)
    assert main(["facades", "--root", str(tmp_path / "data")]) == 0
    target = tmp_path / "data" / "facades"
    assert capsys.readouterr().out.strip() == str(target)
    assert (target / "train" / "1.jpg").read_bytes() == PNG
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["facades"]  # no leftovers
    (www / "pix2pix/datasets/facades.tar.gz").unlink()     # present: no second download
    assert download("facades", str(tmp_path / "data")) == str(target)


def test_cyclegan_zip_and_shared_name(server, tmp_path):
    www, url = server
    make_zip(www / "cyclegan/datasets/horse2zebra.zip", unpaired("horse2zebra"))
    make_zip(www / "cyclegan/datasets/maps.zip", unpaired("maps"))
    make_tar(www / "pix2pix/datasets/maps.tar.gz", {"maps/train/1.jpg": PNG})
    root = str(tmp_path / "data")
    target = Path(download("horse2zebra", root, base_url=url))
    assert all((target / side / "1.png").exists() for side in ["trainA", "testB"])
    maps = Path(download("maps", root, base_url=url))               # paired by default
    assert (maps / "train").is_dir() and not (maps / "trainA").exists()
    download("maps", root, kind="cyclegan", base_url=url)           # both layouts side by side
    assert (maps / "train").is_dir() and (maps / "trainA").is_dir()


def test_missing_folders_are_named(server, tmp_path):
    www, url = server
    make_zip(www / "cyclegan/datasets/apple2orange.zip",
             unpaired("apple2orange", sides=("trainA", "trainB", "testA")))
    with pytest.raises(DataError, match="testB"):
        download("apple2orange", str(tmp_path / "data"), base_url=url)
    assert not (tmp_path / "data" / "apple2orange").exists()


@pytest.mark.parametrize("evil", ["../escape.jpg", "/tmp/absolute.jpg"])
def test_archive_escaping_its_folder_is_refused(server, tmp_path, evil):
    www, url = server
    make_tar(www / "pix2pix/datasets/night2day.tar.gz", {"night2day/train/1.jpg": PNG, evil: PNG})
    with pytest.raises(DataError, match="refusing"):
        download("night2day", str(tmp_path / "data"), base_url=url)
    assert not (tmp_path / "data" / "escape.jpg").exists()


def test_tar_links_are_refused(server, tmp_path):
    www, url = server
    path = www / "pix2pix/datasets/cityscapes.tar.gz"
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("cityscapes/train/1.jpg")
        info.size = len(PNG)
        tf.addfile(info, io.BytesIO(PNG))
        link = tarfile.TarInfo("cityscapes/train/2.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DataError, match="links"):
        download("cityscapes", str(tmp_path / "data"), base_url=url)


def test_unknown_name_and_http_errors(server, tmp_path):
    _, url = server
    with pytest.raises(DataError, match="edges2shoes.*horse2zebra"):
        download("horses", str(tmp_path), base_url=url)
    with pytest.raises(DataError, match="--kind cyclegan"):
        download("grumpifycat", str(tmp_path), kind="pix2pix", base_url=url)
    with pytest.raises(DataError, match="could not download .*edges2shoes.tar.gz"):
        download("edges2shoes", str(tmp_path), base_url=url)          # 404 on the server
    assert list(tmp_path.glob(".edges2shoes*")) == []


def test_cli_reports_errors_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["nosuchset"])
    assert exit_info.value.code == 2
    assert "error: unknown dataset 'nosuchset'" in capsys.readouterr().err
