"""Parsing that never drops a bad line silently.

pandas' readers either fail on the first bad line or skip it (or pad a short
row with NaN), so the loaders keep their own per-row error information: every
record that cannot be decoded, parsed or split into the expected number of
fields ends up in the `malformed` table with its table, file name, 1-based
line number, raw text, reason and (when it can be read) the field in the user
id's position.

Quoted CSV goes through Python's `csv` module over the whole stream, so a
newline inside a quoted field (a title) stays in that field, and line numbers
are csv's own (`reader.line_num`). A UTF-8 byte order mark is dropped. On
ml-latest-small (ratings, movies and tags; 2 cores) this reads in the same
time as the line-by-line splitter it replaced: see BUILD.md, "Parse time".
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.data.header_hints import HeaderError, column_hint, headerless_hint, separator_hint
from mtrec.data.tables import (
    LINE,
    RAW,
    SOURCE_COL,
    SPLIT,
    BadLine,
    blank,
    id_column,
)
from mtrec.data.text_files import decode, file_bytes, shown, undecodable


class TextLines(NamedTuple):
    lines: list[tuple[int, str]]  # (1-based line number, text), blank lines left out
    bad: list[BadLine]  # the lines that do not decode
    encoding: str  # what the file was read as (see decode)


def read_lines(path: Path, encoding: str) -> TextLines:
    """Decode an unquoted text file into (line number, text) pairs, skipping blank lines.

    Splits on "\\n" only (not str.splitlines, which also breaks latin-1 text at
    \\x85) and strips a trailing "\\r", so CRLF files read the same as LF files.
    Lines that do not decode are reported, the rest of the file still loads.
    """
    text, dirty, encoding = decode(file_bytes(path), encoding)
    lines: list[tuple[int, str]] = []
    bad: list[BadLine] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        reason = undecodable(line, encoding) if dirty else None
        if reason:
            bad.append((path.name, number, shown(line), reason))
        elif line.strip():
            lines.append((number, line))
    return TextLines(lines, bad, encoding)


def split_delimited(
    path: Path, sep: str, n_fields: int, encoding: str = "utf-8", user_field: int | None = 0
) -> tuple[pd.DataFrame, list[BadLine]]:
    """Split an unquoted delimited file (MovieLens .dat / u.* files) into string columns.

    Returns a frame with columns 0..n_fields-1 plus LINE and RAW, and the bad
    lines (wrong number of fields or undecodable); `user_field` is the column
    holding user ids (None: the file has none).
    """
    lines, undecoded, _ = read_lines(path, encoding)
    bad: list[BadLine] = [(*b[:4], _field(b[2].split(sep), user_field)) for b in undecoded]
    numbers = np.fromiter((n for n, _ in lines), dtype="int64", count=len(lines))
    texts = pd.Series([t for _, t in lines], dtype=object)
    parts = texts.str.split(sep, regex=False)
    counts = parts.str.len().to_numpy() if len(parts) else np.zeros(0, dtype="int64")
    ok = counts == n_fields
    for i in np.flatnonzero(~ok):
        bad.append((path.name, int(numbers[i]), texts.iat[i],
                    f"expected {n_fields} {sep!r}-separated fields, got {counts[i]}",
                    _field(parts.iat[i], user_field)))
    good = parts[ok]
    frame = pd.DataFrame(good.tolist(), columns=range(n_fields)) if len(good) else \
        pd.DataFrame({i: pd.Series(dtype=object) for i in range(n_fields)})
    frame[LINE] = numbers[ok]
    frame[RAW] = texts[ok].to_numpy()
    return frame, bad


class Record(NamedTuple):
    """One CSV record: first line (1-based), fields (None when bad), raw text, reason, end index."""

    line: int
    fields: list[str] | None
    raw: str
    reason: str
    end: int  # index of the first line after this record


class Dialect(csv.excel):
    """Comma-separated, double-quoted, and a space after a comma skipped: hand-written and
    some exported files separate fields with ", ", where a quoted field then began with a
    space, so its quotes stayed in the text (a title read as '"Heat, The"' split in two)."""

    skipinitialspace = True


def csv_records(
    lines: list[str], start: int, n_fields: int | None, multiline: bool
) -> Iterator[Record]:
    """Parse `lines[start:]` (each with its line ending) with one csv reader, skipping blanks.

    A record csv cannot parse, or that has other than `n_fields` fields (None:
    any), is bad; one empty field past them (a row ending in a comma, as some
    exporters write every row: they were all rejected) is dropped. A bad record
    spanning several lines (an unbalanced quote swallows the lines after it) is
    reported as its first line only, and parsing restarts on the next line, so
    one stray quote costs one line.
    With multiline=False a quoted field may not hold a line break at all. A
    quote left open at the end of the file is bad too (csv would return the
    rest of the file as that field).
    """
    pos, total = start, len(lines)
    while pos < total:
        base = pos
        reader = csv.reader(itertools.islice(lines, base, None), Dialect)
        while True:
            first = pos
            try:
                fields, reason = next(reader), ""
            except StopIteration:
                return
            except csv.Error as err:
                fields, reason = None, f"CSV error: {err}"
            pos = base + reader.line_num
            if fields is not None and len(fields) <= 1 and not "".join(fields).strip():
                continue  # a blank line
            span = pos - first
            unclosed = fields is not None and pos == total and _unclosed(lines[first:pos])
            if unclosed:
                fields, reason = None, "unbalanced quote: one opened on this line is never closed"
            elif fields is not None and n_fields is not None and len(fields) != n_fields:
                if len(fields) == n_fields + 1 and not fields[-1].strip():
                    fields = fields[:-1]  # a trailing comma: some exporters end rows so
                else:
                    reason = f"expected {n_fields} comma-separated fields, got {len(fields)}"
            if span > 1 and (reason or not multiline) and not unclosed:
                spans = f"a quoted field runs over lines {first + 1}-{pos}: unbalanced quote?"
                reason = f"{reason}; {spans}" if reason else spans
            if not reason:
                raw = lines[first] if span == 1 else "".join(lines[first:pos])
                yield Record(first + 1, fields, raw.rstrip("\r\n"), "", pos)
            elif span == 1:
                yield Record(first + 1, None, _raw(lines, first, pos), reason, pos)
            else:  # resynchronise: report the first line, then read on from the next one
                yield Record(first + 1, None, _raw(lines, first, first + 1), reason, first + 1)
                pos = first + 1
                break


class CsvTable(NamedTuple):
    frame: pd.DataFrame  # string columns named by the header, plus LINE and RAW
    bad: list[BadLine]
    encoding: str  # what the file was read as (see decode)


def read_csv_rows(
    path: Path,
    required: tuple[str, ...],
    encoding: str = "utf-8",
    user_column: str | None = None,
    multiline: bool = True,
) -> CsvTable:
    """Read a quoted CSV file with a header row into string columns named by the header.

    Returns the rows (plus LINE and RAW), the bad records and the encoding read
    (see decode). A header that is missing, unreadable, lacks a `required` column
    or repeats a column is an error for the whole file (ValueError). `user_column`
    names the column holding user ids; multiline=False rejects quoted line breaks
    (see csv_records).
    """
    text, dirty, encoding = decode(file_bytes(path), encoding)
    # csv's field limit (128 KiB by default) would cut a long description and
    # resume inside it; no field can be longer than the file itself.
    limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    try:
        frame, bad = _read_records(path, text, dirty, required, encoding, user_column,
                                   multiline)
    finally:
        csv.field_size_limit(limit)
    return CsvTable(frame, bad, encoding)


def _read_records(
    path: Path,
    text: str,
    dirty: bool,
    required: tuple[str, ...],
    encoding: str,
    user_column: str | None,
    multiline: bool,
) -> tuple[pd.DataFrame, list[BadLine]]:
    lines = io.StringIO(text, newline="").readlines()
    head = next(csv_records(lines, 0, None, True), None)
    if head is None:
        raise ValueError(f"{path}: file is empty (expected a header with {list(required)})")
    if head.fields is None:
        utf16 = " (NUL bytes: UTF-16? save the file as UTF-8)" if "\0" in text else ""
        raise ValueError(f"{path}: cannot read the header (line {head.line}): "
                         f"{head.reason}{utf16}")
    header = [h.strip() for h in head.fields]
    missing = [c for c in required if c not in header]
    if missing:
        raise HeaderError(path, header, f"lacks required column(s) {missing}"
                          + separator_hint(header) + column_hint(header, missing)
                          + headerless_hint(header, required))
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise HeaderError(path, header, f"repeats column(s) {repeated}")
    user_at = header.index(user_column) if user_column in header else None
    rows, numbers, raws = [], [], []
    bad: list[BadLine] = []
    for line, fields, raw, reason, _ in csv_records(lines, head.end, len(header), multiline):
        if dirty and not reason:
            reason = undecodable(raw, encoding) or ""
        if reason:
            loose = fields or _split_loosely(raw)
            bad.append((path.name, line, shown(raw), reason, shown(_field(loose, user_at))))
            continue
        rows.append(fields)
        numbers.append(line)
        raws.append(raw)
    frame = pd.DataFrame(rows, columns=header) if rows else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    frame[LINE] = np.asarray(numbers, dtype="int64")
    frame[RAW] = pd.Series(raws, dtype=object)
    return frame, bad


def to_ratings(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Convert parsed columns (ids, rating, timestamp, LINE, RAW[, split]) to canonical dtypes.

    Nothing is rejected here: cleaning gives each bad value its reason. A
    rating that is not a number becomes NaN (bad_rating; the row's RAW text
    keeps the value). An ISO 8601 date or time as text is read as its epoch
    seconds (iso_seconds); a fraction of a second is dropped. A timestamp that is
    not a number of seconds stays the stripped text it was (bad_timestamp), an
    empty rating or timestamp becomes None (missing_field); either makes that
    column object, not float64/int64. Rows keep SOURCE_COL, LINE and RAW.
    """
    rating = pd.to_numeric(_stripped(frame[F.RATING]), errors="coerce").astype("float64")
    text = _stripped(frame[F.TIMESTAMP])
    seconds = pd.to_numeric(text, errors="coerce")
    if seconds.isna().any():  # text: ISO 8601 or bad
        seconds = seconds.fillna(iso_seconds(text[seconds.isna()]))
    # Seconds with a fraction (Python's time.time(), JavaScript's Date.now() / 1000) lose
    # it, as ISO 8601 times do: a log of them was rejected whole as bad_timestamp. A
    # negative one stays as written, for rejects.csv.
    finite = seconds.notna() & np.isfinite(seconds)
    floored = np.floor(seconds.where(finite, 0))
    whole = finite & (floored.abs() < 2**62) & ((floored == seconds) | (floored >= 0))
    seconds = floored
    timestamp: pd.Series = seconds.where(whole, 0).astype("int64")
    if not whole.all():
        timestamp = timestamp.astype(object).where(whole, text)
    ratings = pd.DataFrame(
        {
            F.USER_ID: id_column(frame[F.USER_ID]).to_numpy(dtype=object),
            F.ITEM_ID: id_column(frame[F.ITEM_ID]).to_numpy(dtype=object),
            F.RATING: _with_none(rating, blank(frame[F.RATING])).to_numpy(),
            F.TIMESTAMP: _with_none(timestamp, blank(frame[F.TIMESTAMP])).to_numpy(),
        }
    )
    if SPLIT in frame.columns:  # an official split travels with its rows
        ratings[SPLIT] = frame[SPLIT].to_numpy(dtype=object)
    ratings[SOURCE_COL] = source
    ratings[LINE] = frame[LINE].to_numpy().astype("int64")
    raws = frame[RAW] if RAW in frame.columns else pd.Series(
        [repr(v) for v in frame.drop(columns=[LINE]).to_dict("records")], index=frame.index)
    ratings[RAW] = raws.astype(str).to_numpy(dtype=object)
    return ratings


# 2020-09-13, 2020-09-13T12:26:40, 2020-09-13 12:26:40.5+02:00, ...Z: ISO 8601 only. Other
# date texts (09/13/2020, 13.09.2020) are ambiguous or locale-bound and stay rejected.
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?")


def iso_seconds(text: pd.Series) -> pd.Series:
    """Whole epoch seconds of ISO 8601 dates and times (naive ones as UTC, as Parquet's
    naive timestamps; fractions of a second dropped); NaN for anything else. Database
    and spreadsheet exports write times so; they were rejected row by row."""
    out = pd.Series(np.nan, index=text.index, dtype="float64")
    iso = text.map(lambda v: isinstance(v, str) and _ISO_8601.fullmatch(v) is not None)
    if iso.any():
        when = pd.to_datetime(text[iso], utc=True, errors="coerce")  # the regex: ISO only
        stamp = (when - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        out[iso] = stamp.astype("float64")
    return out


def _with_none(values: pd.Series, missing: pd.Series) -> pd.Series:
    """`values` with None where `missing`; object dtype only when something is missing."""
    return values.astype(object).where(~missing, None) if missing.any() else values


def _stripped(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip() if values.dtype == object else values


def _unclosed(record: list[str]) -> bool:
    """Whether the record's lines end inside a quoted field (csv's strict mode says so)."""
    try:
        next(csv.reader(record, Dialect, strict=True), None)
    except csv.Error as err:
        return "unexpected end of data" in str(err)
    return False


def _raw(lines: list[str], first: int, end: int) -> str:
    text = lines[first] if end == first + 1 else "".join(lines[first:end])
    return text.rstrip("\r\n")


def _field(fields: list[str] | None, at: int | None) -> str:
    if fields is None or at is None or at >= len(fields):
        return ""
    return fields[at].strip()


def _split_loosely(raw: str) -> list[str]:
    """Best-effort fields of a record csv rejected (to find its user id field). An
    unbalanced quote makes csv read the whole line as one field: commas split it then."""
    text = raw.replace("\0", "")
    try:
        fields = next(csv.reader([text], Dialect), [])
    except csv.Error:
        fields = []
    if len(fields) > 1 or "," not in text:
        return fields
    return [f.strip().strip('"') for f in text.split(",")]
