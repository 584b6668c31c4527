"""Cleaning: one reason per rejected row, the reject budget, rejects file, pseudonyms."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data import tables as T
from mtrec.data.cleaning import (
    BAD_RATING,
    BAD_TIMESTAMP,
    DUPLICATE,
    KEPT,
    MALFORMED,
    MISSING_FIELD,
    RATING_OUT_OF_RANGE,
    REASONS,
    REJECT_COLUMNS,
    UNKNOWN_ITEM,
    UNKNOWN_USER,
    DataQualityError,
    clean,
    pseudonymize_users,
    write_rejects,
)
from mtrec.data.tables import (
    RATINGS,
    REASON,
    Dataset,
    concat_malformed,
    empty_malformed,
    make_items,
    make_users,
    malformed_frame,
)

USERS = make_users(pd.Series(["u1", "u2", "u3"]))
ITEMS = make_items(pd.Series(["i1", "i2", "i3"]))


def dataset(
    rows: list[tuple], malformed: pd.DataFrame | None = None, users: pd.DataFrame = USERS
) -> Dataset:
    ratings = pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP])
    return Dataset(
        "test", ratings, users, ITEMS, empty_malformed() if malformed is None else malformed
    )


GOOD = [("u1", "i1", 4.0, 100), ("u2", "i2", 3.5, 200), ("u3", "i3", 5.0, 300)]


@pytest.mark.parametrize(
    "row,reason",
    [
        (("", "i1", 4.0, 10), MISSING_FIELD),
        (("u1", None, 4.0, 10), MISSING_FIELD),
        (("u1", "i2", "", 10), MISSING_FIELD),
        (("u1", "i2", 4.0, None), MISSING_FIELD),
        (("u1", "i2", "four", 10), BAD_RATING),
        (("u1", "i2", float("nan"), 10), BAD_RATING),
        (("u1", "i2", 5.5, 10), RATING_OUT_OF_RANGE),
        (("u1", "i2", 0.0, 10), RATING_OUT_OF_RANGE),
        (("u1", "i2", 4.0, -5), BAD_TIMESTAMP),
        (("u1", "i2", 4.0, 1.5), BAD_TIMESTAMP),
        (("u1", "i2", 4.0, "noon"), BAD_TIMESTAMP),
        (("u1", "i2", 4.0, 1_700_000_000_000), BAD_TIMESTAMP),  # milliseconds
        (("u9", "i2", 4.0, 10), UNKNOWN_USER),
        (("u1", "i9", 4.0, 10), UNKNOWN_ITEM),
        (("u1", "i1", 2.0, 50), DUPLICATE),  # GOOD has (u1, i1) later, at 100
    ],
)
def test_each_reason(row: tuple, reason: str) -> None:
    result = clean(dataset([*GOOD, row]))
    assert result.rejects["reason"].tolist() == [reason]
    assert result.counts[reason] == 1 and result.counts["rejected"] == 1
    assert result.counts["kept"] == 3 and result.counts["total"] == 4
    assert len(result.dataset.ratings) == 3


def test_malformed_lines_are_rejects() -> None:
    bad = malformed_frame([("u.data", 7, "1\t2", "expected 4 fields, got 2")], RATINGS)
    result = clean(dataset(GOOD, bad))
    assert result.counts[MALFORMED] == 1 and result.counts["total"] == 4
    row = result.rejects.iloc[0]
    assert (row["source"], row["line"], row["reason"]) == ("u.data", 7, MALFORMED)
    assert row["detail"] == "expected 4 fields, got 2" and row["raw"] == "1\t2"
    assert row["table"] == RATINGS
    assert result.dataset.malformed.empty


def test_users_and_items_bad_lines_count_apart_from_ratings() -> None:
    """Bad users/items lines are rejects of their own table, not of the ratings budget."""
    bad = concat_malformed([
        malformed_frame([("users.csv", n, "x,y,z", "expected 4 fields, got 3")
                         for n in range(2, 12)], T.USERS),
        malformed_frame([("items.csv", 3, "q", "expected 5 fields, got 1")], T.ITEMS),
    ])
    result = clean(dataset(GOOD, bad))  # 11 bad lines vs 3 ratings: within the budget
    assert result.counts["total"] == 3 and result.counts["rejected"] == 0
    assert result.counts[MALFORMED] == 0 and result.counts["kept"] == 3
    assert result.tables[RATINGS] == {"rows": 3, "kept": 3, "rejected": 0, "duplicate": 0}
    assert result.tables[T.USERS] == {"rows": 13, "kept": 3, "rejected": 10, "duplicate": 0,
                                      "derived": False}
    assert result.tables[T.ITEMS] == {"rows": 4, "kept": 3, "rejected": 1, "duplicate": 0,
                                      "derived": False}
    assert result.rejects["table"].value_counts().to_dict() == {T.USERS: 10, T.ITEMS: 1}
    assert (result.rejects["reason"] == MALFORMED).all()


def test_duplicates_keep_latest_and_one_reason_per_row() -> None:
    rows = [
        ("u1", "i1", 1.0, 300),
        ("u1", "i1", 2.0, 100),
        ("u1", "i1", 9.0, 999),
        ("u1", "i1", 3.0, 200),
    ]
    result = clean(dataset(rows), max_reject_fraction=1.0)
    kept = result.dataset.ratings
    assert kept[F.RATING].tolist() == [1.0] and kept[F.TIMESTAMP].tolist() == [300]
    # The out-of-range row is later, but invalid rows never win a duplicate contest.
    assert sorted(result.rejects["reason"]) == [DUPLICATE, DUPLICATE, RATING_OUT_OF_RANGE]
    assert result.counts["rejected"] + result.counts["kept"] == result.counts["total"]


def test_same_timestamp_duplicate_keeps_last_row() -> None:
    result = clean(dataset([("u1", "i1", 1.0, 5), ("u1", "i1", 2.0, 5), *GOOD[1:]]))
    assert result.dataset.ratings[F.RATING].tolist()[0] == 2.0


def test_unknown_user_skipped_without_users_table() -> None:
    empty_users = make_users(pd.Series([], dtype=object))
    result = clean(dataset([*GOOD, ("u9", "i1", 3.0, 10)], users=empty_users))
    assert result.counts[UNKNOWN_USER] == 0 and result.counts["kept"] == 4


def test_cleaned_dtypes_and_order() -> None:
    rows = [("u1", "i1", "4", "100"), ("u2", "i2", 3, 200.0)]
    result = clean(dataset(rows))
    ratings = result.dataset.ratings
    assert ratings[F.RATING].dtype == "float64" and ratings[F.TIMESTAMP].dtype == "int64"
    assert list(result.rejects.columns) == list(REJECT_COLUMNS)
    assert set(REASONS) | {"total", "kept", "rejected"} == set(result.counts)


def test_too_many_rejects_raise_with_counts() -> None:
    rows = [("u1", "i9", 4.0, 1), ("u1", "i2", 7.0, 2), ("u2", "i2", 7.0, 3), GOOD[0]]
    with pytest.raises(DataQualityError) as err:
        clean(dataset(rows))
    message = str(err.value)
    assert "3 of 4" in message and "unknown_item=1" in message
    assert len(err.value.rejects) == 3 and list(err.value.rejects.columns) == list(REJECT_COLUMNS)
    assert "rating_out_of_range=2" in message
    assert clean(dataset(rows), max_reject_fraction=0.8).counts["rejected"] == 3


def test_duplicates_are_merged_not_counted_against_the_limit() -> None:
    # A click log repeats interactions: 6 rows, 4 of them repeats of 2 pairs.
    clicks = [("u1", "i1", 1.0, t) for t in (1, 2, 3)] + [("u2", "i2", 1.0, t) for t in (4, 5, 6)]
    result = clean(dataset(clicks), max_reject_fraction=0.5)
    assert result.counts[DUPLICATE] == 4 and result.counts[KEPT] == 2
    # Bad rows are counted among the distinct ones: 2 of 3 is above 50%, and the
    # message names the merged duplicates apart.
    bad = clicks + [("u3", "i3", "x", 7), ("u3", "i1", 9.0, 8)]
    with pytest.raises(DataQualityError, match=r"rejected 2 of 4 ratings \(50.0%") as err:
        clean(dataset(bad), max_reject_fraction=0.4)
    assert "4 duplicates merged, not counted" in str(err.value)
    assert "duplicate=" not in str(err.value)


def test_write_rejects(tmp_path: Path) -> None:
    bad = malformed_frame([("r.csv", 3, "x,y", "expected 4 fields, got 2")], RATINGS)
    result = clean(dataset([*GOOD, ("u1", "i2", 6.0, 1)], bad))
    path = write_rejects(result, tmp_path / "out" / "rejects.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(back.columns) == list(REJECT_COLUMNS)
    assert back["reason"].tolist() == [MALFORMED, RATING_OUT_OF_RANGE]
    # Generated rows have no file: their line is the row number, raw their values.
    assert back["line"].tolist() == ["3", "4"] and back["source"].tolist() == ["r.csv", "test"]
    assert back["raw"].iloc[0] == "x,y" and "6.0" in back["raw"].iloc[1]


def test_write_rejects_says_what_each_row_got_wrong(tmp_path: Path) -> None:
    rows = [*GOOD, ("u1", "i2", None, 10), ("u1", "i2", "abc", 11), ("u1", "i3", 9.0, 12),
            ("u2", "i1", 4.0, -5), ("u1", "i9", 4.0, 13), ("u1", "i1", 2.0, 50)]
    result = clean(dataset(rows), max_reject_fraction=1.0)
    back = pd.read_csv(write_rejects(result, tmp_path / "rejects.csv"), dtype=str,
                       keep_default_na=False)
    assert dict(zip(back["reason"], back["detail"], strict=True)) == {
        MISSING_FIELD: "missing rating",
        BAD_RATING: "the rating is not a number (the raw text shows it)",
        RATING_OUT_OF_RANGE: "rating 9 is outside [0.5, 5]",
        BAD_TIMESTAMP: "a time before 1970-01-01 UTC is not accepted, whether written as "
                       "seconds (a negative number) or ISO 8601",  # -5: no guess at why
        UNKNOWN_ITEM: "the item_id is not in the items table",
        DUPLICATE: "a later rating of the same user_id and item_id is kept",
    }
    assert back["timestamp"].tolist() == ["10", "11", "12", "-5", "13", "50"]  # not "10.0"


def test_a_bad_timestamp_says_what_it_looks_like() -> None:
    rows = [*GOOD, ("u1", "i2", 4.0, 1_600_000_000_000), ("u1", "i3", 4.0, "09/13/2020"),
            ("u2", "i1", 4.0, 1.5), ("u2", "i2", 4.0, "soon"), ("u2", "i3", 4.0, "inf")]
    result = clean(dataset(rows), max_reject_fraction=1.0)
    details = result.rejects.set_index("line")["detail"].str.removeprefix(
        "a timestamp must be seconds since 1970-01-01 UTC, from 0 to before 2100, or an ISO "
        "8601 time")
    assert details.tolist() == [
        "a time from 2100-01-01 UTC on is not accepted, whether written as seconds since "
        "1970-01-01 UTC or ISO 8601 (milliseconds?)",
        " (a date as text must be ISO 8601, such as 2020-09-13T12:26:40Z)",
        "",
        "",
        "",
    ]


def test_a_time_out_of_range_says_so_whatever_its_form() -> None:
    """-5 and 1960-01-01T00:00:00Z (read as -315619200) are both before 1970, and
    2150-01-01 is as much an ISO 8601 time as 4102444800 is seconds: the detail says the
    time is out of range, not that the value must be seconds or ISO 8601. Only a number
    no ISO 8601 time reaches (past year 9999 as seconds) gets the milliseconds guess."""
    rows = [*GOOD, ("u1", "i2", 4.0, -5), ("u1", "i3", 4.0, -315_619_200),
            ("u2", "i1", 4.0, 5_680_281_600), ("u2", "i2", 4.0, 4_102_444_800)]
    details = clean(dataset(rows), max_reject_fraction=1.0).rejects["detail"].tolist()
    before = ("a time before 1970-01-01 UTC is not accepted, whether written as seconds "
              "(a negative number) or ISO 8601")
    after = ("a time from 2100-01-01 UTC on is not accepted, whether written as seconds "
             "since 1970-01-01 UTC or ISO 8601")
    assert details == [before, before, after, after]


def test_pseudonymize_users() -> None:
    ds = dataset(GOOD)
    out = pseudonymize_users(ds, b"secret")
    ids = out.ratings[F.USER_ID]
    assert ids.str.fullmatch(r"[0-9a-f]{16}").all()
    assert not set(ids) & set(ds.ratings[F.USER_ID])
    assert set(ids) == set(out.users[F.USER_ID])
    assert pseudonymize_users(ds, b"secret").ratings[F.USER_ID].equals(ids)  # deterministic
    assert not pseudonymize_users(ds, b"other").ratings[F.USER_ID].equals(ids)  # keyed
    assert ds.ratings[F.USER_ID].tolist() == ["u1", "u2", "u3"]  # input untouched
    assert clean(out).counts["kept"] == 3
    with pytest.raises(ValueError):
        pseudonymize_users(ds, b"")


def _scaled_log(top_share: int) -> Dataset:
    """100 ratings of 100 users, one item each: `top_share` of them 6..10, the rest 1..5."""
    users = [f"u{n}" for n in range(100)]
    rows = [(users[n], "i1", 6 + n % 5 if n < top_share else 1 + n % 5, n) for n in range(100)]
    return dataset(rows, users=make_users(pd.Series(users)))


def test_ratings_on_another_scale_stop_with_a_rescale_hint() -> None:
    # 30% above 5 is under --max-reject-fraction's 50%, yet no typo: a 1-10 scale.
    with pytest.raises(DataQualityError) as err:
        clean(_scaled_log(30), max_reject_fraction=0.5)
    message = str(err.value)
    assert "30 of 100 ratings (30%) are outside 0.5-5 (from 6 to 10)" in message
    assert "rating x 0.5 maps 10 to 5" in message and "not rated" not in message
    assert err.value.rejects is not None  # rejects.csv is still written from them
    assert (err.value.rejects[REASON] == RATING_OUT_OF_RANGE).sum() == 30
    # A limit of 1 never stops: the user chose to train on what is in range.
    assert clean(_scaled_log(30), max_reject_fraction=1.0).counts[KEPT] == 70


def test_zeros_in_many_rows_stop_too_without_a_factor() -> None:
    # A 0-4 scale, or 0 marking "not rated": no factor maps it, the message says both.
    users = [f"u{n}" for n in range(50)]
    rows = [(users[n], "i1", n % 5, n) for n in range(50)]  # 0, 1, 2, 3, 4, 0, ...
    with pytest.raises(DataQualityError, match=r"10 of 50 ratings \(20%\) are outside 0.5-5 "
                       r"\(all 0\).*0 = not rated") as err:
        clean(dataset(rows, users=make_users(pd.Series(users))))
    assert "maps" not in str(err.value)


def _log_of(values: list[int]) -> Dataset:
    users = [f"u{n}" for n in range(len(values))]
    return dataset([(users[n], "i1", v, n) for n, v in enumerate(values)],
                   users=make_users(pd.Series(users)))


def test_play_counts_stop_with_an_implicit_feedback_hint_not_a_factor() -> None:
    """A factor that maps 700 plays to 5 puts every count under 140 below 0.5: the
    advice was wrong for counts. A 0-100 scale keeps its factor."""
    plays = [1] * 52 + [2] * 18 + [3] * 10 + [7, 9, 12, 15, 20, 40, 80, 120, 300, 700] * 2
    with pytest.raises(DataQualityError) as err:
        clean(_log_of(plays))
    message = str(err.value)
    assert "20 of 100 ratings (20%) are outside 0.5-5 (from 7 to 700)" in message
    assert "look like counts (plays, views, purchases: whole numbers, median 1)" in message
    assert "give every row the same rating, e.g. 1" in message and "maps" not in message
    percent = [1 + (37 * n) % 100 for n in range(100)]  # 1..100, median about 50
    with pytest.raises(DataQualityError, match=r"rating x 0.05 maps 100 to 5") as err:
        clean(_log_of(percent))
    assert "counts" not in str(err.value)


@pytest.mark.parametrize("low", [0, -1])
def test_two_values_stop_with_a_dislike_like_hint(low: int) -> None:
    """Thumbs down/up (0/1, -1/1) got the hint for 0 as "not rated" only, or a 0-4 scale."""
    with pytest.raises(DataQualityError) as err:
        clean(_log_of([low, 1, 1] * 20))
    message = str(err.value)
    assert f"20 of 60 ratings (33%) are outside 0.5-5 (all {low})" in message
    assert f"Two values ({low} and 1) look like dislike and like: map them to 1 and 5" \
        in message and "0-4" not in message


@pytest.mark.parametrize("top_share", [9, 10])
def test_a_few_ratings_above_the_scale_are_rejected_rows_not_a_stop(top_share: int) -> None:
    # 10% or fewer (and under 10 rows): typos, rejected one by one as before.
    result = clean(_scaled_log(top_share), max_reject_fraction=0.5)
    assert result.counts[RATING_OUT_OF_RANGE] == top_share
