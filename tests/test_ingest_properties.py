"""Property-based tests of ingestion (hypothesis): generated CSV and Parquet tables mixing
valid rows with every known bad class, random bytes, quoting, BOM and LF/CRLF endings.

Invariants for ratings: kept + rejected == rows written; every reject has a reason, a
line number and the raw text; no raw user id anywhere in the output home under
pseudonymisation; the same input gives the same output. The number of examples comes
from the hypothesis profile (tests/conftest.py; HYPOTHESIS_PROFILE=long for many more).
"""

from __future__ import annotations

import contextlib
import gzip
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mtrec.contracts import features as F
from mtrec.data.cleaning import REASONS, DataQualityError, clean
from mtrec.data.generic import load_generic
from mtrec.data.tables import RATING_COLUMNS, RATINGS
from mtrec.ingest import IngestOptions, ingest

# User ids use letters that never occur in hex pseudonyms, item ids, numbers or titles.
USER = st.text(alphabet="GHJKLMNPQRSTVWXYZ", min_size=7, max_size=7).map(lambda s: "U" + s)
ITEM_IDS = [f"i{n}" for n in range(5)]
KINDS = ("valid", "valid", "valid", "extra_field", "few_fields", "empty_user", "bad_rating",
         "out_of_range", "bad_timestamp", "unknown_item", "duplicate", "unbalanced_quote",
         "bad_bytes", "nul", "random")
KEY = b"property-key"


@dataclass
class Generated:
    """A generated data directory's files and what a correct loader must report."""

    files: dict[str, bytes]
    rows: int = 0  # ratings records written (blank lines do not count)
    lines: dict[int, str] = field(default_factory=dict)  # line -> raw text of each row
    user_ids: set[str] = field(default_factory=set)  # every raw user id written
    titles: dict[str, str] = field(default_factory=dict)  # item -> title, for valid items

    def write(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (path / name).write_bytes(data)
        return path


def _quote(draw, value: str) -> str:
    """Quoted when it must be (as csv.writer does), and now and then when it need not be."""
    must = any(c in value for c in ',"\r\n')
    if must or (value and draw(st.booleans()) and draw(st.booleans())):
        return '"' + value.replace('"', '""') + '"'
    return value


def _record(draw, values: list[str]) -> bytes:
    return ",".join(_quote(draw, v) for v in values).encode("utf-8")


def _ratings_row(draw, kind: str, header: list[str], users: list[str], seen: list[dict]) -> bytes:
    row = {F.USER_ID: draw(st.sampled_from(users)), F.ITEM_ID: draw(st.sampled_from(ITEM_IDS)),
           F.RATING: draw(st.sampled_from(["0.5", "1", "3.5", "4", "5"])),
           F.TIMESTAMP: str(draw(st.integers(0, 2_000_000_000))), "note": "n"}
    if kind == "duplicate" and seen:
        row.update(draw(st.sampled_from(seen)), **{F.TIMESTAMP: str(draw(st.integers(0, 9)))})
    elif kind == "empty_user":
        row[F.USER_ID] = ""
    elif kind == "bad_rating":
        row[F.RATING] = draw(st.sampled_from(["abc", "", "nan", "inf", "--1", "4,5"]))
    elif kind == "out_of_range":
        row[F.RATING] = draw(st.sampled_from(["9", "0", "-1", "5.5"]))
    elif kind == "bad_timestamp":
        row[F.TIMESTAMP] = draw(st.sampled_from(["noon", "-7", "-0.5", "99999999999", "1e400"]))
    elif kind == "unknown_item":
        row[F.ITEM_ID] = "missing"
    values = [row[c] for c in header]
    if kind == "random":
        junk = draw(st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b))
        return b"#" + junk
    if kind in ("bad_bytes", "nul", "unbalanced_quote"):
        at = draw(st.sampled_from([i for i, c in enumerate(header) if c != F.USER_ID]))
        if kind == "unbalanced_quote":
            at = draw(st.integers(0, len(values) - 1))
            return b",".join(v.encode() for v in values[:at]) + (b"," if at else b"") + \
                b'"' + b",".join(v.encode() for v in values[at:])
        values[at] += "\0" if kind == "nul" else ""
        if kind == "bad_bytes":
            return _record(draw, values[:at]) + (b"," if at else b"") + \
                values[at].encode() + b"\xff\xfe" + b"".join(
                    b"," + _record(draw, [v]) for v in values[at + 1:])
    elif kind == "extra_field":
        values.append("extra")
    elif kind == "few_fields":
        values = values[:draw(st.integers(1, len(values) - 1))]
    if kind in ("valid", "duplicate"):
        seen.append({F.USER_ID: row[F.USER_ID], F.ITEM_ID: row[F.ITEM_ID]})
    return _record(draw, values)


def _read_as(data: bytes) -> str:
    """UTF-8, or Windows-1252 for a file that is not UTF-8 and holds no UTF-8 character
    past ASCII, byte order mark or NUL byte (data/text_files.py)."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    single = (not data.startswith(b"\xef\xbb\xbf") and b"\0" not in data
              and data.decode("utf-8", errors="ignore").isascii())
    return "cp1252" if single else "utf-8"


@st.composite
def generic_dir(draw, with_tables: bool = True) -> Generated:
    users = draw(st.lists(USER, min_size=1, max_size=4, unique=True))
    header = draw(st.permutations([*RATING_COLUMNS, *(["note"] if draw(st.booleans()) else [])]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    out = Generated({})
    body = [bom + _record(draw, header) + draw(st.sampled_from([b"\n", b"\r\n"]))]
    seen: list[dict] = []
    raw_lines: dict[int, bytes] = {}
    for kind in draw(st.lists(st.sampled_from(KINDS), max_size=25)):
        if draw(st.integers(0, 9)) == 0:  # blank noise lines are not rows
            body.append(draw(st.sampled_from([b"\n", b"  \r\n"])))
        line = _ratings_row(draw, kind, header, users, seen)
        body.append(line + draw(st.sampled_from([b"\n", b"\r\n"])))
        out.rows += 1
        raw_lines[len(body)] = line
    out.files["ratings.csv"] = b"".join(body)
    encoding = _read_as(out.files["ratings.csv"])
    out.lines = {n: line.decode(encoding, errors="replace") for n, line in raw_lines.items()}
    out.user_ids = set(users)
    if with_tables and draw(st.booleans()):
        stray = draw(USER)  # occurs only in a bad users line
        out.user_ids.add(stray)
        out.files["users.csv"] = ("user_id,age\n" + "".join(f"{u},3\n" for u in users)
                                  + f"{stray},4,extra\n").encode()
    if with_tables and draw(st.booleans()):
        title = st.text(alphabet='ab é,"\n', max_size=12)
        out.titles = {i: draw(title) for i in ITEM_IDS}
        rows = [_record(draw, [i, t]) for i, t in out.titles.items()]
        out.files["items.csv"] = b"item_id,title\r\n" + b"\r\n".join(rows) + b"\r\n"
    return out


def _clean(path: Path):
    return clean(load_generic(path), max_reject_fraction=1.0)


@given(generic_dir())
def test_every_ratings_row_is_kept_or_rejected_with_its_line(gen: Generated) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = _clean(gen.write(Path(tmp)))
    counts, rejects = result.counts, result.rejects
    assert counts["kept"] + counts["rejected"] == counts["total"] == gen.rows
    assert len(result.dataset.ratings) == counts["kept"]
    assert rejects["reason"].isin(REASONS).all()
    ratings = rejects[rejects["table"] == RATINGS]
    assert len(ratings) == counts["rejected"]
    for line, raw in zip(ratings["line"], ratings["raw"], strict=True):
        assert gen.lines[line] == raw  # the right line, as read
    assert (rejects["line"] >= 2).all() and (rejects["raw"].str.len() > 0).all()
    items = result.dataset.items.set_index(F.ITEM_ID)[F.TITLE]
    for item, title in gen.titles.items():  # quoted line breaks, commas and quotes kept
        assert items[item] == title.strip()


@given(generic_dir())
def test_same_input_same_output(gen: Generated) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first, second = _clean(gen.write(Path(tmp))), _clean(Path(tmp))
    assert first.rejects.equals(second.rejects) and first.counts == second.counts
    assert first.dataset.ratings.equals(second.dataset.ratings)


@settings(max_examples=max(5, settings().max_examples // 3))
@given(generic_dir())
def test_no_raw_user_id_in_the_output_home_under_pseudonymisation(gen: Generated) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, home = gen.write(Path(tmp, "data")), Path(tmp, "home")
        with contextlib.suppress(ValueError):  # too little data: stops after the rejects
            ingest("generic", str(data), str(home),
                   IngestOptions(pseudonymize_key=KEY, max_reject_fraction=1.0))
        texts = [(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes())
                 for p in home.rglob("*") if p.is_file()]
    blob = b"\n".join(texts)
    for user in gen.user_ids:
        assert user.encode() not in blob, user


@given(st.binary(max_size=300), st.sampled_from([b"", b"user_id,item_id,rating,timestamp\n"]))
def test_any_bytes_load_or_fail_with_a_clear_error(data: bytes, header: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ratings.csv").write_bytes(header + data)
        try:
            dataset = load_generic(tmp)
        except ValueError as err:
            assert "ratings.csv" in str(err)
            return
        result = clean(dataset, max_reject_fraction=1.0)
    assert result.counts["kept"] + result.counts["rejected"] == result.counts["total"]


PARQUET_VALUES = {
    F.USER_ID: st.one_of(USER, st.just(""), st.none()),
    F.ITEM_ID: st.sampled_from([*ITEM_IDS, "missing", ""]),
    F.RATING: st.sampled_from(["4", "0.5", "abc", "9", "", None, "nan"]),
    F.TIMESTAMP: st.sampled_from(["1", "2", "noon", "-3", "1.5", None, "99999999999"]),
}


@given(st.lists(st.fixed_dictionaries(PARQUET_VALUES), max_size=30))
def test_parquet_rows_are_kept_or_rejected_with_their_row(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows, columns=list(RATING_COLUMNS), dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_parquet(Path(tmp) / "ratings.parquet")
        try:
            result = _clean(Path(tmp))
        except DataQualityError as err:  # not with max_reject_fraction=1.0
            raise AssertionError(err) from err
    assert result.counts["kept"] + result.counts["rejected"] == len(rows)
    rejects = result.rejects
    assert rejects["line"].between(1, len(rows)).all() and rejects["reason"].isin(REASONS).all()
    assert (rejects["raw"].str.len() > 0).all()
