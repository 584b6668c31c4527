"""Download: a real HTTP round trip on 127.0.0.1, pinned sha256 checks, nothing half-extracted."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mtrec.data.download import PINS, ChecksumError, DownloadError, Pins, download, main
from mtrec.data.movielens import load_ml1m, load_ml100k

ML1M_FILES = {
    "ratings.dat": b"1::10::5::978300760\n2::10::3::978302109\n",
    "movies.dat": "10::Café (1999)::Drama\n".encode("latin-1"),
    "users.dat": b"1::F::1::10::48067\n2::M::25::12::70072\n",
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A static file server on 127.0.0.1 serving (www folder, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # talk to 127.0.0.1 directly
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def make_zip(path: Path, prefix: str, files: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            zf.writestr(f"{prefix}{name}", data)
    return path


def assert_clean(dest: Path, allowed: set[str] = frozenset()) -> None:
    """Only fully verified data set folders may be left in dest (no temp dirs, no zips)."""
    assert {p.name for p in dest.iterdir()} <= set(allowed)


# ---------------------------------------------------- core (no real data needed)
def test_ml1m_download_and_load(server: tuple[Path, str], tmp_path: Path) -> None:
    www, url = server
    make_zip(www / "ml-1m.zip", "ml-1m/", ML1M_FILES)
    dest = tmp_path / "dest"
    path = download("ml-1m", dest, base_url=url)
    assert path == dest / "ml-1m"
    assert_clean(dest, {"ml-1m"})
    assert len(load_ml1m(path).ratings) == 2
    (www / "ml-1m.zip").unlink()  # an existing verified copy is reused, no request made
    assert download("ml-1m", dest, base_url=url) == path


def test_pinned_mismatch_leaves_nothing(server: tuple[Path, str], tmp_path: Path) -> None:
    www, url = server
    make_zip(www / "ml-1m.zip", "ml-1m/", ML1M_FILES)
    good = {n: hashlib.sha256(b).hexdigest() for n, b in ML1M_FILES.items()}
    dest = tmp_path / "dest"
    wrong = Pins(PINS["ml-1m"].required, {**good, "ratings.dat": "0" * 64})
    with pytest.raises(ChecksumError, match="ratings.dat: sha256"):
        download("ml-1m", dest, base_url=url, pins=wrong)
    assert_clean(dest)
    with pytest.raises(ChecksumError, match="sha256 .* != pinned"):
        download(
            "ml-1m",
            dest,
            base_url=url,
            pins=dataclasses.replace(wrong, files=good, zip_sha256="f" * 64),
        )
    assert_clean(dest)
    assert download("ml-1m", dest, base_url=url, pins=Pins((), good)).is_dir()


def test_missing_required_file(server: tuple[Path, str], tmp_path: Path) -> None:
    www, url = server
    files = {k: v for k, v in ML1M_FILES.items() if k != "users.dat"}
    make_zip(www / "ml-1m.zip", "ml-1m/", files)
    with pytest.raises(ChecksumError, match="users.dat"):
        download("ml-1m", tmp_path / "dest", base_url=url)
    assert_clean(tmp_path / "dest")


def test_http_error_and_bad_archives(server: tuple[Path, str], tmp_path: Path) -> None:
    www, url = server
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"404[^(]*$"):  # the server answered
        download("ml-1m", dest, base_url=url)
    with pytest.raises(DownloadError, match=r"\(without a network, .* --local-dir DIR "):
        download("ml-1m", dest, base_url="http://127.0.0.1:9/")  # nothing listens there
    (www / "ml-1m.zip").write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a valid zip"):
        download("ml-1m", dest, base_url=url)
    make_zip(www / "ml-1m.zip", "../", ML1M_FILES)
    with pytest.raises(DownloadError, match="unsafe"):
        download("ml-1m", dest, base_url=url)
    assert_clean(dest)
    assert not (tmp_path / "ratings.dat").exists()
    with pytest.raises(ValueError, match="no download recipe"):
        download("ml-25m", dest, base_url=url)


def test_existing_copy_must_verify(server: tuple[Path, str], tmp_path: Path) -> None:
    www, url = server
    make_zip(www / "ml-1m.zip", "ml-1m/", ML1M_FILES)
    (tmp_path / "ml-1m").mkdir()  # an empty leftover folder
    with pytest.raises(ChecksumError, match="force"):
        download("ml-1m", tmp_path, base_url=url)
    assert download("ml-1m", tmp_path, base_url=url, force=True) == tmp_path / "ml-1m"
    assert (tmp_path / "ml-1m" / "users.dat").is_file()


def test_cli_local_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, data in ML1M_FILES.items():
        (tmp_path / name).write_bytes(data)
    assert main(["ml-1m", "--local-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path) and "no sha256 pins" in captured.err
    assert main(["ml-100k", "--local-dir", str(tmp_path)]) == 1
    assert "missing required file u.data" in capsys.readouterr().err
    assert main(["ml-100k", "--local-dir", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such folder\n"


# ------------------------------------------ real files (../shared/data), zipped in tmp
@pytest.mark.movielens
def test_ml100k_real_download(server: tuple[Path, str], tmp_path: Path, shared_data: Path) -> None:
    www, url = server
    files = {p.name: p for p in sorted((shared_data / "ml-100k").iterdir())}
    make_zip(www / "ml-100k.zip", "ml-100k/", {**files, "mku.sh": b"#!/bin/sh\n"})
    dest = tmp_path / "dest"
    path = download("ml-100k", dest, base_url=url)
    assert_clean(dest, {"ml-100k"})
    assert len(load_ml100k(path, split="u1").ratings) == 100_000
    assert main(["ml-100k", "--local-dir", str(path)]) == 0


@pytest.mark.movielens
def test_ml100k_tampered_download(
    server: tuple[Path, str], tmp_path: Path, shared_data: Path
) -> None:
    www, url = server
    files = {p.name: p for p in sorted((shared_data / "ml-100k").iterdir())}
    data = (shared_data / "ml-100k" / "u.data").read_bytes()
    tampered = data.replace(b"\t3\t", b"\t5\t", 1)  # one rating edited
    make_zip(www / "ml-100k.zip", "ml-100k/", {**files, "u.data": tampered})
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match=r"u\.data: sha256") as err:
        download("ml-100k", dest, base_url=url)
    assert "u.item" not in str(err.value)  # only the edited file is reported
    assert_clean(dest)


@pytest.mark.movielens
def test_ml_latest_small_zip_pin(
    server: tuple[Path, str], tmp_path: Path, shared_data: Path
) -> None:
    """A re-zipped archive has the right files but not the pinned zip bytes."""
    www, url = server
    files = {p.name: p for p in sorted((shared_data / "ml-latest-small").iterdir())}
    make_zip(www / "ml-latest-small.zip", "ml-latest-small/", files)
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="ml-latest-small.zip: sha256"):
        download("ml-latest-small", dest, base_url=url)
    assert_clean(dest)
    per_file_only = dataclasses.replace(PINS["ml-latest-small"], zip_sha256=None)
    path = download("ml-latest-small", dest, base_url=url, pins=per_file_only)
    assert (path / "tags.csv").is_file()
