"""Line-level parsing that never drops a bad line silently.

pandas' readers either fail on the first bad line or skip it (or pad a short
row with NaN), so the loaders split lines themselves: every line that cannot be
decoded, split into the expected number of fields, or converted ends up in the
`malformed` table with its file name, 1-based line number, raw text and reason.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data.tables import SPLIT, malformed_frame
from mtrec.models import features as F

LINE, RAW = "_line", "_raw"  # bookkeeping columns of a parsed frame

Malformed = list[tuple[str, int, str, str]]


def read_lines(path: Path, encoding: str) -> tuple[list[tuple[int, str]], Malformed]:
    """Decode a text file into (line number, text) pairs, skipping blank lines.

    Splits on "\\n" only (not str.splitlines, which also breaks latin-1 text at
    \\x85) and strips a trailing "\\r", so CRLF files read the same as LF files.
    Lines that do not decode are reported, the rest of the file still loads.
    """
    data = path.read_bytes()
    bad: Malformed = []
    try:
        text_lines = data.decode(encoding).split("\n")
    except UnicodeDecodeError:
        text_lines = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                text_lines.append(raw.decode(encoding))
            except UnicodeDecodeError as err:
                shown = raw.decode(encoding, errors="replace").rstrip("\r")
                bad.append((path.name, number, shown, f"not valid {encoding}: {err.reason}"))
                text_lines.append("")
    lines = [(n, t.rstrip("\r")) for n, t in enumerate(text_lines, start=1)]
    return [(n, t) for n, t in lines if t.strip()], bad


def split_delimited(
    path: Path, sep: str, n_fields: int, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an unquoted delimited file (MovieLens .dat / u.* files) into string columns.

    Returns a frame with columns 0..n_fields-1 plus LINE and RAW, and the
    malformed lines (wrong number of fields or undecodable).
    """
    lines, bad = read_lines(path, encoding)
    numbers = np.fromiter((n for n, _ in lines), dtype="int64", count=len(lines))
    texts = pd.Series([t for _, t in lines], dtype=object)
    parts = texts.str.split(sep, regex=False)
    counts = parts.str.len().to_numpy() if len(parts) else np.zeros(0, dtype="int64")
    ok = counts == n_fields
    for i in np.flatnonzero(~ok):
        bad.append((path.name, int(numbers[i]), texts.iat[i],
                    f"expected {n_fields} {sep!r}-separated fields, got {counts[i]}"))
    good = parts[ok]
    frame = pd.DataFrame(good.tolist(), columns=range(n_fields)) if len(good) else \
        pd.DataFrame({i: pd.Series(dtype=object) for i in range(n_fields)})
    frame[LINE] = numbers[ok]
    frame[RAW] = texts[ok].to_numpy()
    return frame, malformed_frame(bad)


def read_csv_rows(
    path: Path, required: tuple[str, ...], encoding: str = "utf-8"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a quoted CSV file with a header row into string columns named by the header.

    Rows whose field count differs from the header's are malformed; a header
    missing a `required` column is an error for the whole file (ValueError).
    """
    lines, bad = read_lines(path, encoding)
    if not lines:
        raise ValueError(f"{path}: file is empty (expected a header with {list(required)})")
    numbers = [n for n, _ in lines]
    reader = csv.reader(t for _, t in lines)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: header {header} lacks required column(s) {missing}")
    rows, row_lines, row_raw = [], [], []
    done = 1  # lines consumed so far (the header)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            fields, reason = None, f"CSV error: {err}"
        first, done = done, reader.line_num
        number = numbers[first]
        raw = "\n".join(t for _, t in lines[first:done])
        if fields is not None and len(fields) != len(header):
            reason = f"expected {len(header)} comma-separated fields, got {len(fields)}"
            fields = None
        if fields is None:
            bad.append((path.name, number, raw, reason))
            continue
        rows.append(fields)
        row_lines.append(number)
        row_raw.append(raw)
    frame = pd.DataFrame(rows, columns=header) if rows else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    frame[LINE] = np.asarray(row_lines, dtype="int64")
    frame[RAW] = pd.Series(row_raw, dtype=object)
    return frame, malformed_frame(bad)


def to_ratings(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert parsed columns (ids, rating, timestamp, LINE[, RAW, split]) to canonical dtypes.

    A rating that is not a number becomes NaN and is left for cleaning to
    reject (float can hold it); a timestamp that is not an integer cannot be
    held by an int64 column, so that line is malformed here.
    """
    user, item = id_strings(frame[F.USER_ID]), id_strings(frame[F.ITEM_ID])
    rating = pd.to_numeric(_stripped(frame[F.RATING]), errors="coerce").astype("float64")
    ts_num = pd.to_numeric(_stripped(frame[F.TIMESTAMP]), errors="coerce")
    ts_ok = ts_num.notna() & np.isfinite(ts_num) & (ts_num == np.floor(ts_num))
    ts_ok &= ts_num.abs() < 2**62
    failed = frame.loc[~ts_ok]
    if RAW in frame.columns:
        raws = list(failed[RAW])
    else:  # a binary source (Parquet): show the row's values instead of a text line
        values = failed.drop(columns=[LINE]).to_dict("records")
        raws = [repr(v) for v in values]
    bad = [
        (source, int(line), str(raw), f"timestamp {value!r} is not an integer")
        for line, raw, value in zip(
            failed[LINE], raws, failed[F.TIMESTAMP], strict=True
        )
    ]
    ratings = pd.DataFrame(
        {
            F.USER_ID: user[ts_ok].to_numpy(dtype=object),
            F.ITEM_ID: item[ts_ok].to_numpy(dtype=object),
            F.RATING: rating[ts_ok].to_numpy(),
            F.TIMESTAMP: ts_num[ts_ok].to_numpy().astype("int64"),
        }
    )
    if SPLIT in frame.columns:  # an official split travels with its rows
        ratings[SPLIT] = frame.loc[ts_ok, SPLIT].to_numpy(dtype=object)
    return ratings, malformed_frame(bad)


def id_strings(values: pd.Series) -> pd.Series:
    """Ids as stripped strings; missing ones become "" (cleaning rejects them)."""
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _stripped(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip() if values.dtype == object else values
