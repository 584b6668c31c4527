"""JSON Lines input (`ratings.jsonl`, `.jsonl.gz`): one JSON object per line, as event
logs, BigQuery exports and message-queue dumps write them.

Read like the CSV files (parsing.read_csv_rows): the keys are the columns (those
of every object, in the order they first appear), a line that is not a JSON
object is rejected with its line number and text and the rest load, and a key
that no object has is an error for the whole file. A JSON list (`"genres":
["Action", "Comedy"]`) stays a list; `null` is a missing value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data.header_hints import column_hint
from mtrec.data.parsing import CsvTable, read_lines
from mtrec.data.tables import LINE, RAW

SUFFIXES = (".jsonl", ".jsonl.gz")


def is_json_lines(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def _object(line: str) -> tuple[dict | None, str]:
    """The line's JSON object, or None and why not."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        return None, f"not JSON: {err.msg} (column {err.colno})"
    except RecursionError:
        return None, "not JSON: nested too deep"
    if not isinstance(value, dict):
        return None, f"not a JSON object: a {type(value).__name__}"
    return value, ""


def read_json_lines(path: Path, required: tuple[str, ...]) -> CsvTable:
    """The objects as a frame (plus LINE and RAW), the bad lines and the encoding read.

    A bad line is one that is not an object, so it has no user id to show: under
    pseudonymisation its text is withheld (data/privacy.py).
    """
    lines, bad, encoding = read_lines(path, "utf-8")
    rows: list[dict] = []
    numbers: list[int] = []
    raws: list[str] = []
    for number, line in lines:
        value, why = _object(line)
        if value is None:
            bad.append((path.name, number, line, why))
            continue
        rows.append(value)
        numbers.append(number)
        raws.append(line)
    if not rows:
        raise ValueError(f"{path}: no JSON object in it (expected one per line, with the "
                         f"keys {list(required)})")
    frame = pd.DataFrame.from_records(rows)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no object has the key(s) {missing}"
                         + column_hint(list(map(str, frame.columns)), missing))
    for column in frame.select_dtypes(include="object").columns:  # 7.0 among texts: 7
        frame[column] = frame[column].map(
            lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    frame[LINE] = np.asarray(numbers, dtype="int64")
    frame[RAW] = pd.Series(raws, dtype=object)
    return CsvTable(frame, bad, encoding)
