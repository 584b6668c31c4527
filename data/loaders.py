"""One entry point from a source name (CLI/pipeline parameter) to a canonical Dataset."""

from __future__ import annotations

from pathlib import Path

from mtrec.data.generic import SUFFIXES, load_generic
from mtrec.data.header_hints import HeaderError
from mtrec.data.movielens import load_ml1m, load_ml100k, load_ml_latest_small
from mtrec.data.synthetic import generate
from mtrec.data.tables import Dataset

SOURCES = ("sample", "synthetic", "ml-100k", "ml-latest-small", "ml-1m", "generic")
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


def load_dataset(source: str, path: str | None = None, split: str | None = None) -> Dataset:
    """Load `source` in canonical form.

    sample:    the embedded generic-format CSVs in mtrec/data/sample (a path is an error).
    synthetic: `synthetic.generate()` with its defaults (a path is an error).
    ml-100k:   extracted ml-100k directory; split None (u.data) or u1..u5/ua/ub.
    ml-latest-small, ml-1m, generic: the extracted directory at `path`.
    Only ml-100k has official splits; `split` for any other source is an error.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; expected one of {SOURCES}")
    if split is not None and source != "ml-100k":
        raise ValueError(
            f"source {source!r} has no official split {split!r} "
            "(only ml-100k does; generic data may carry a `split` column)"
        )
    if path is not None and source in ("sample", "synthetic"):  # `--path` alone: not ignored
        raise ValueError(f"source {source!r} is built in and reads no --path ({path}); "
                         "name the data's format with --source: generic (your CSV/Parquet) "
                         "or a MovieLens set (ml-100k, ml-latest-small, ml-1m)")
    if source == "sample":
        return load_generic(SAMPLE_DIR, name="sample")
    if source == "synthetic":
        return generate()
    if path is None and source == "generic":
        raise ValueError("source 'generic' needs --path DIR: a folder with ratings.csv "
                         "(or .csv.gz) or ratings.parquet (README: Your data)")
    if path is None:
        raise ValueError(f"source {source!r} needs --path DIR: fetch it with "
                         f"`mtrec download {source} --dest DIR`, or pass a local copy")
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{source}: {_not_a_folder(path)}")
    try:
        return _load_folder(source, path, split)
    except (FileNotFoundError, HeaderError) as err:  # the folder may be another source's
        hint = layout_hint(Path(path), source)
        if not hint:
            raise
        if isinstance(err, HeaderError):
            raise HeaderError(err.path, err.header, err.problem + hint) from None
        raise FileNotFoundError(f"{err}{hint}") from None


def _load_folder(source: str, path: str, split: str | None) -> Dataset:
    if source == "ml-100k":
        return load_ml100k(path, split)
    if source == "ml-latest-small":
        return load_ml_latest_small(path)
    if source == "ml-1m":
        return load_ml1m(path)
    return load_generic(path)


def _not_a_folder(path: str) -> str:
    """Why `path` is no data folder; for a file given as --path (a common first try:
    `--path data/ratings.csv`), the folder to give instead."""
    if not Path(path).exists():
        return f"{path} does not exist"
    if Path(path).is_file():
        return f"{path} is a file: --path is the folder that holds it, {Path(path).parent}"
    return f"{path} is not a directory"


# The files that tell each folder source's layout apart, most specific first.
_LAYOUTS = (("ml-100k", ("u.data",)), ("ml-1m", ("ratings.dat", "movies.dat")),
            ("ml-latest-small", ("ratings.csv", "movies.csv")))


def layout_hint(path: Path, source: str) -> str:
    """" (this folder is laid out as ml-latest-small: --source ml-latest-small)" when
    `path` holds another source's files than `source` reads; "" otherwise. A MovieLens
    folder given as generic failed on its userId/movieId header, and the reverse on
    missing u.item."""
    found = next((name for name, files in _LAYOUTS
                  if all((path / f).is_file() for f in files)), None)
    if found is None and any((path / f"ratings{s}").is_file() for s in SUFFIXES):
        found = "generic"
    if found is None or found == source:
        return ""
    return f" (this folder is laid out as {found}: --source {found})"
