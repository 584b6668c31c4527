"""Rating times as logs write them: epoch seconds (whole, with a fraction, or in a finer
unit), ISO 8601 text, Parquet timestamp columns, dates written as numbers, or no times.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data.cleaning import clean
from mtrec.data.generic import load_generic
from tests.test_parsing import HEADER, write


def test_parquet_timestamp_columns_become_epoch_seconds(tmp_path: Path) -> None:
    naive = pd.to_datetime([1_600_000_000_700, 1_600_000_100_000, None], unit="ms")
    for name, times in (("naive", naive), ("paris", naive.tz_localize("UTC").tz_convert(
            "Europe/Paris"))):
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame({F.USER_ID: ["a", "a", "a"], F.ITEM_ID: ["x", "y", "z"],
                      F.RATING: [4.0, 3.0, 5.0], F.TIMESTAMP: times}
                     ).to_parquet(folder / "ratings.parquet")
        result = clean(load_generic(folder), max_reject_fraction=1.0)
        assert result.dataset.ratings[F.TIMESTAMP].tolist() == [1_600_000_000, 1_600_000_100]
        reject = result.rejects.iloc[0]  # a missing time is a reject, shown as read
        assert (reject["reason"], reject["detail"]) == ("missing_field", "missing timestamp")
        assert "NaT" in reject["raw"], name


def test_iso_8601_text_timestamps_become_epoch_seconds(tmp_path: Path) -> None:
    """Database and spreadsheet exports write times as ISO 8601 text; each row was a
    bad_timestamp. Naive times are UTC (as naive Parquet timestamps); other date texts,
    ambiguous or impossible, stay rejected with the ISO hint."""
    (tmp_path / "ratings.csv").write_text(
        "user_id,item_id,rating,timestamp\n"
        "a,w,4,2020-09-13T12:26:40Z\n"           # 1_600_000_000
        "a,x,4,2020-09-13 14:26:41.9+02:00\n"    # 1_600_000_001: the fraction dropped
        "a,y,4,2020-09-13\n"                     # midnight UTC: 1_599_955_200
        "a,z,4,1600000003\n"                     # numbers as before
        "b,w,4,09/13/2020\n"
        "b,x,4,2020-02-30\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [
        1_600_000_000, 1_600_000_001, 1_599_955_200, 1_600_000_003]
    assert result.rejects["reason"].tolist() == ["bad_timestamp"] * 2
    assert result.rejects["detail"].str.endswith(
        "(a date as text must be ISO 8601, such as 2020-09-13T12:26:40Z)").all()


def test_iso_times_before_1970_are_rejected_as_such(tmp_path: Path) -> None:
    """A log of 1960-01-01T00:00:00Z times was rejected whole with a detail asking for
    "seconds since 1970-01-01 UTC ... or an ISO 8601 time", which they were: the detail
    now says the time is before 1970. Valid ISO and epoch-seconds rows still pass."""
    (tmp_path / "ratings.csv").write_text(
        HEADER + "a,w,4,1960-01-01T00:00:00Z\na,x,4,1969-12-31\n"
        "a,y,4,2020-09-13T12:26:40Z\na,z,4,1600000001\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [1_600_000_000, 1_600_000_001]
    assert result.rejects["reason"].tolist() == ["bad_timestamp"] * 2
    assert result.rejects["detail"].tolist() == [
        "a time before 1970-01-01 UTC is not accepted, whether written as seconds "
        "(a negative number) or ISO 8601"] * 2
    assert "1960-01-01T00:00:00Z" in result.rejects["raw"].iloc[0]  # as written


def test_epoch_seconds_with_a_fraction_lose_it(tmp_path: Path) -> None:
    """Python's time.time() and JavaScript's Date.now() / 1000 write fractions; such a
    log was rejected whole (100,836 of 100,836 ratings: bad_timestamp). Milliseconds and
    negative times stay rejected."""
    (tmp_path / "ratings.csv").write_text(
        HEADER + "a,w,4,1600000000.9\na,x,4,1600000001.0\na,y,4,1.6000000025e9\n"
        "b,w,4,1600000000123.5\nb,x,4,-0.5\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [
        1_600_000_000, 1_600_000_001, 1_600_000_002]
    assert result.rejects["reason"].tolist() == ["bad_timestamp"] * 2
    assert result.rejects["timestamp"].tolist() == [1_600_000_000_123, "-0.5"]
    assert result.rejects["detail"].iloc[0].endswith("(milliseconds?)")


def test_a_timestamp_column_without_a_time_reads_as_untimed(tmp_path: Path) -> None:
    """A log exported with an empty (or all-NULL) timestamp column was rejected whole as
    missing_field; without the column it read as untimed."""
    rows = "".join(f"u{u},i{i},4,{'NULL' if u % 2 else ''}\n" for u in range(3) for i in range(5))
    (tmp_path / "ratings.csv").write_text(HEADER + rows)
    result = clean(load_generic(tmp_path))
    assert result.counts["kept"] == 15 and (result.dataset.ratings[F.TIMESTAMP] == 0).all()


@pytest.mark.parametrize("power, unit", [(3, "milliseconds"), (6, "microseconds"),
                                         (9, "nanoseconds")])
def test_times_in_a_finer_unit_read_as_seconds_with_a_note(
        tmp_path: Path, power: int, unit: str) -> None:
    """JavaScript's Date.now() and Java's currentTimeMillis() write milliseconds: every row
    was a bad_timestamp ("milliseconds?"), so the log was rejected whole."""
    scale = 10**power
    (tmp_path / "ratings.csv").write_text(
        HEADER + f"a,x,4,{1_600_000_000 * scale + scale // 2}\na,y,4,{1_600_000_001 * scale}\n"
        "a,z,4,soon\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [1_600_000_000, 1_600_000_001]
    assert result.rejects["timestamp"].tolist() == ["soon"]  # text stays cleaning's
    assert result.dataset.notes == (
        f"ratings.csv's timestamps are {unit} since the epoch: read as seconds",)
    pd.DataFrame({F.USER_ID: ["a", "a"], F.ITEM_ID: ["x", "y"], F.RATING: [4.0, 4.0],
                  F.TIMESTAMP: [1_600_000_000 * scale, 1_600_000_002 * scale]}
                 ).to_parquet(tmp_path / "p.parquet")
    (tmp_path / "ratings.csv").unlink()
    (tmp_path / "p.parquet").rename(tmp_path / "ratings.parquet")
    ds = load_generic(tmp_path)
    assert ds.ratings[F.TIMESTAMP].tolist() == [1_600_000_000, 1_600_000_002] and ds.notes


@pytest.mark.parametrize("first, second, form", [
    ("20200913", "20200914", "YYYYMMDD"),
    ("20200913122640", "20200913123640", "YYYYMMDDhhmmss"),  # ten minutes apart
])
def test_dates_written_as_numbers_read_as_those_dates_with_a_note(
        tmp_path: Path, first: str, second: str, form: str) -> None:
    """As seconds, 20200913 is 1970-08-21: a log of such dates read as three weeks of 1970,
    a day one second long (the session Gram's ten minutes held months), and as
    microseconds 20200913122640 was the same weeks with a wrong note."""
    (tmp_path / "ratings.csv").write_text(
        HEADER + f"a,x,4,{first}\na,y,4,{second}\na,z,4,soon\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    start = 1_599_955_200 + (44_800 if len(first) == 14 else 0)  # 2020-09-13 (12:26:40) UTC
    step = 86_400 if len(first) == 8 else 600
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [start, start + step]
    assert result.rejects["timestamp"].tolist() == ["soon"]
    assert result.dataset.notes == (f"ratings.csv's timestamps are dates written {form}: "
                                    "read as seconds since the epoch (UTC)",)


@pytest.mark.parametrize("stamps", [
    ("20201313", "20200914"),  # month 13: no date, so seconds (1970), as before
    ("20200913", "inf"),  # not all dates (inf is cleaning's bad_timestamp)
    ("1600000000", "1600000600"),  # seconds
    ("18991231", "18991231"),  # a date before 1900
])
def test_numbers_that_are_not_all_dates_stay_seconds(tmp_path: Path, stamps) -> None:
    (tmp_path / "ratings.csv").write_text(
        HEADER + "".join(f"a,{i},4,{t}\n" for i, t in enumerate(stamps)))
    ds = load_generic(tmp_path)
    assert ds.ratings[F.TIMESTAMP].tolist() == [
        t if t == "inf" else int(t) for t in stamps] and not ds.notes


def test_times_that_mix_seconds_and_milliseconds_are_left_to_the_hint(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text(HEADER + "a,x,4,1600000000\na,y,4,1600000000000\n")
    result = clean(load_generic(tmp_path), max_reject_fraction=1.0)
    assert result.dataset.ratings[F.TIMESTAMP].tolist() == [1_600_000_000]
    assert result.rejects["detail"].iloc[0].endswith("(milliseconds?)")
    assert result.dataset.notes == ()


def test_a_ratings_file_without_timestamps_reads_with_time_zero(tmp_path: Path) -> None:
    """Logs exported without times were "lacks required column(s) ['timestamp']"; the
    split then draws each user's eval share at random (data/splits.py untimed)."""
    write(tmp_path / "ratings.csv", "user_id,item_id,rating\nu1,x,4\nu1,y,5\n")
    assert load_generic(tmp_path).ratings[F.TIMESTAMP].tolist() == [0, 0]
    write(tmp_path / "ratings.csv", "user_id,item_id,rating,TimeStamp\nu1,x,4,1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['timestamp'\] \(column names "
                       r"are lower-case, as listed: 'TimeStamp' -> 'timestamp'\)"):
        load_generic(tmp_path)
    write(tmp_path / "ratings.csv", "user_id,item_id,rating,update\nu1,x,4,yes\n")
    assert load_generic(tmp_path).ratings[F.TIMESTAMP].tolist() == [0]  # no time word
    for name in ("rated_at", "Date", "event_time"):  # times under another name: not untimed
        write(tmp_path / "ratings.csv", f"user_id,item_id,rating,{name}\nu1,x,4,2020-01-01\n")
        with pytest.raises(ValueError, match=rf"no 'timestamp' column, but \['{name}'\]: name "
                           r"the column of rating times 'timestamp'"):
            load_generic(tmp_path)
