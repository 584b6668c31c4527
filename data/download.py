"""Fetch MovieLens archives from GroupLens, verified against pinned sha256 values.

Why pins: GroupLens serves plain HTTPS downloads with no signatures, and
modified copies of these files circulate widely (see ../shared/data/README.md),
so every extracted file with a known hash is checked before it is used. The
archive is extracted into a temporary folder next to the destination and only
renamed into place once everything verified: a failed download never leaves a
half-extracted data set behind.

Pins: ml-100k has per-file sha256 values for every data file (the archive's
`allbut.pl`/`mku.sh` scripts are not pinned and not needed). ml-latest-small
has per-file values and the sha256 of the zip itself. ml-1m has **no pins
available here**; for it only the zip's own CRC checks and the presence of the
files the loader needs are verified (no hashes were invented).

The other way to get data is a local copy: `--local-dir DIR` skips the
download and only checks DIR (pinned files are verified when present).

    python -m mtrec.data.download ml-100k --dest ~/data
    python -m mtrec.data.download ml-100k --local-dir ../shared/data/ml-100k
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


class DownloadError(RuntimeError):
    """The archive could not be fetched or extracted."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its pinned sha256 (or a required file is missing)."""


@dataclass(frozen=True)
class Pins:
    """What a verified copy must contain: required files, sha256 per file, and of the zip."""

    required: tuple[str, ...]
    files: Mapping[str, str] = field(default_factory=dict)
    zip_sha256: str | None = None


_ML100K_SHA256 = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
_ML_LATEST_SMALL_SHA256 = {
    "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
    "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
}
PINS: dict[str, Pins] = {
    "ml-100k": Pins(("u.data", "u.item", "u.user", "u.genre"), _ML100K_SHA256),
    "ml-latest-small": Pins(
        ("ratings.csv", "movies.csv", "tags.csv"),
        _ML_LATEST_SMALL_SHA256,
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
    ),
    "ml-1m": Pins(("ratings.dat", "movies.dat", "users.dat")),  # no sha256 pins available
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_dir(path: str | Path, pins: Pins, *, all_pinned: bool = True) -> list[str]:
    """Problems with a data set folder: missing required files, sha256 mismatches, and
    (with all_pinned, as for a fresh download) pinned files that are absent."""
    path = Path(path)
    if not path.is_dir():
        return ["no such folder" if not path.exists() else "not a folder"]
    problems = [f"missing required file {n}" for n in pins.required if not (path / n).is_file()]
    for name, expected in sorted(pins.files.items()):
        file = path / name
        if not file.is_file():
            if all_pinned and name not in pins.required:
                problems.append(f"missing pinned file {name}")
        elif (actual := sha256_file(file)) != expected:
            problems.append(f"{name}: sha256 {actual} != pinned {expected}")
    return problems


def _fetch(url: str, target: Path, timeout: float) -> str:
    """Stream url into target; returns the sha256 of what was written."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                f.write(block)
    except (urllib.error.URLError, OSError) as err:
        offline = "" if isinstance(err, urllib.error.HTTPError) else (
            " (without a network, unzip the set where one is and pass its folder: "
            "--local-dir DIR checks it, or give it to `mtrec run --path` as it is)")
        raise DownloadError(f"could not download {url}: {err}{offline}") from err
    return digest.hexdigest()


def _extract(archive: Path, into: Path) -> None:
    """Extract with CRC checks, refusing members that would land outside `into`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = PurePosixPath(member).parts
                if member.startswith(("/", "\\")) or ".." in parts or ":" in member:
                    raise DownloadError(f"{archive.name}: unsafe member path {member!r}")
            bad = zf.testzip()
            if bad is not None:
                raise ChecksumError(f"{archive.name}: CRC check failed for {bad}")
            zf.extractall(into)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive.name} is not a valid zip: {err}") from err


def download(
    name: str,
    dest: str | Path,
    *,
    base_url: str = GROUPLENS_URL,
    pins: Pins | None = None,
    timeout: float = 60.0,
    force: bool = False,
) -> Path:
    """Download `<base_url>/<name>.zip`, verify it and return the folder `dest/<name>`.

    An existing, verifying `dest/<name>` is reused unless `force`. Raises
    ChecksumError (nothing left behind) when a pinned hash does not match.
    """
    pins = pins if pins is not None else PINS.get(name)
    if pins is None:
        raise ValueError(f"no download recipe for {name!r}; known: {sorted(PINS)}")
    dest = Path(dest)
    final = dest / name
    if final.exists() and not force:
        problems = verify_dir(final, pins)
        if problems:
            raise ChecksumError(f"{final} exists but does not verify (use force=True to "
                                f"replace it): {'; '.join(problems)}")
        return final
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=dest))
    try:
        archive = work / f"{name}.zip"
        url = f"{base_url.rstrip('/')}/{name}.zip"
        actual = _fetch(url, archive, timeout)
        if pins.zip_sha256 and actual != pins.zip_sha256:
            raise ChecksumError(f"{url}: sha256 {actual} != pinned {pins.zip_sha256}")
        extracted = work / "extracted"
        _extract(archive, extracted)
        root = extracted / name if (extracted / name).is_dir() else extracted
        problems = verify_dir(root, pins)
        if problems:
            raise ChecksumError(f"{url} failed verification: {'; '.join(problems)}")
        if final.exists():
            shutil.rmtree(final)
        root.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def main(argv: list[str] | None = None, prog: str | None = None,
         epilog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Fetch and verify a MovieLens data set.")
    parser.add_argument("name", choices=sorted(PINS), help="the MovieLens set")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dest", help="download into DEST/<name>")
    where.add_argument("--local-dir", help="use an existing extracted copy instead")
    parser.add_argument("--base-url", default=GROUPLENS_URL,
                        help="where the .zip files are (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing copy")
    args = parser.parse_args(argv)
    try:
        if args.local_dir:
            path = Path(args.local_dir)
            problems = verify_dir(path, PINS[args.name], all_pinned=False)
            if problems:
                raise ChecksumError(f"{path}: {'; '.join(problems)}")
        else:
            path = download(args.name, args.dest, base_url=args.base_url, force=args.force)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not PINS[args.name].files:
        print(f"note: {args.name} has no sha256 pins; only file presence was checked",
              file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
