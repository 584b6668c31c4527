"""The per-user time split's rule says when equal timestamps straddle a user's cut.

Ties are broken by file order (data/splits.py): with dates without a time, or many
ratings in one second, a file sorted by item id sends those users' highest item ids to
eval. The split itself stays as it was (committed benchmark results depend on it); its
rule text counts the users whose cut the tie-break decided.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.cli import main
from mtrec.contracts import features as F
from mtrec.data.splits import eval_mask, time_split

# (user, item, timestamp) in file order. a: 1, 2, 3, 3, 3 by time, so its one eval
# rating (0.2 of 5) is one of three at time 3: the last in the file, i5. b: 1, 1, 2, 3, 4,
# its tie wholly in train. c: one rating, no cut.
ROWS = [("a", "i1", 3), ("b", "i1", 1), ("a", "i2", 1), ("a", "i3", 3), ("b", "i2", 1),
        ("a", "i4", 2), ("b", "i3", 2), ("a", "i5", 3), ("b", "i4", 4), ("b", "i5", 3),
        ("c", "i1", 7)]


def ratings(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[F.USER_ID, F.ITEM_ID, F.TIMESTAMP]).assign(
        **{F.RATING: 4.0})


def test_a_cut_inside_a_tie_is_counted_and_one_inside_train_is_not() -> None:
    is_eval, rule = eval_mask(ratings(), 0.2)
    # As before: a's latest by file order among its time-3 ratings (i5), b's time-4 one.
    assert is_eval.tolist() == [False] * 7 + [True, True, False, False]
    assert (is_eval == time_split(ratings(), 0.2)).all()
    assert rule == ("per-user time, latest 0.2 to eval; for 1 of 2 users equal timestamps "
                    "straddle the cut, broken by file order")


def test_no_clause_when_no_tie_straddles_a_cut() -> None:
    # Half to eval: a's cut falls between times 2 and 3, b's between 1 and 2.
    is_eval, rule = eval_mask(ratings(), 0.5)
    assert np.flatnonzero(is_eval).tolist() == [0, 3, 6, 7, 8, 9]
    assert rule == "per-user time, latest 0.5 to eval"
    distinct = [(u, i, t * 10 + n) for n, (u, i, t) in enumerate(ROWS)]
    assert eval_mask(ratings(distinct), 0.2)[1] == "per-user time, latest 0.2 to eval"
    assert eval_mask(ratings(), 0.0)[1] == "per-user time, latest 0 to eval"


def test_every_cut_user_can_be_counted() -> None:
    rows = [(u, f"i{i}", 5) for u in ("a", "b") for i in range(4)] + [("c", "i0", 1)]
    rows.append(("c", "i1", 2))  # not all equal: a time split, not the random one
    is_eval, rule = eval_mask(ratings(rows), 0.25)
    assert is_eval.tolist() == [False, False, False, True] * 2 + [False, True]
    assert rule.endswith("; for 2 of 3 users equal timestamps straddle the cut, "
                         "broken by file order")


def test_data_check_shows_the_note_for_dates_without_a_time(tmp_path: Path, capsys) -> None:
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"u{u},i{i},4,2020-09-{13 + i // 3}" for u in range(3) for i in range(5)]
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n"
                                      + "\n".join(rows) + "\n")
    assert main(["data", "check", "--source", "generic", "--path", str(data),
                 "--rejects", str(tmp_path / "rejects.csv")]) == 0
    out = capsys.readouterr().out
    assert ("split: train 12, eval 3 (per-user time, latest 0.2 to eval; for 3 of 3 users "
            "equal timestamps straddle the cut, broken by file order)") in out
