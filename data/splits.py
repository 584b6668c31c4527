"""Which ratings go to eval: the official split, or each user's latest ratings by time.

TensorFlow-free, so ingestion can check the split sizes before writing anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, SPLITS
from mtrec.data.tables import SPLIT

# The two split protocols a model setting can depend on (ModelConfig protocol overrides).
TIME_PROTOCOL, RANDOM_PROTOCOL = "time", "random"
# Examples written without mtrec's ingestion report: no protocol settings apply.
UNKNOWN_PROTOCOL = "unknown"
# A split is "time" when at least this share of eval ratings come at or after the
# user's latest training rating: 1.0 for our per-user time split, ~0.2 for ML-100K u1-u5.
TIME_SPLIT_MIN_SHARE = 0.9


# The seed of the per-user random split of ratings without time order (untimed).
RANDOM_SPLIT_SEED = 0


def untimed(ratings: pd.DataFrame) -> bool:
    """Whether the ratings carry no time order: no timestamp column, or one value for all
    (a log exported without times, filled with 0). "Latest" then means file order."""
    return F.TIMESTAMP not in ratings.columns or ratings[F.TIMESTAMP].nunique() <= 1


def time_split(ratings: pd.DataFrame, eval_fraction: float,
               tie_break: np.ndarray | None = None) -> np.ndarray:
    """Per user, mark the latest round(n * eval_fraction) ratings as eval (at least 1 and
    at most n-1 when n >= 2 and eval_fraction > 0; users with < 2 ratings stay in train).

    Ties on timestamp are broken by `tie_break` (a key per row), by default row order.
    Returns a bool array (True = eval).
    """
    return _time_cut(ratings, eval_fraction, tie_break)[0]


def _time_cut(ratings: pd.DataFrame, eval_fraction: float,
              tie_break: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(time_split's mask, the users whose cut falls between two ratings with the same
    timestamp, so that the tie-break decided which went to eval, the users with a cut)."""
    ties = np.arange(len(ratings)) if tie_break is None else tie_break
    stamps = ratings[F.TIMESTAMP].to_numpy()
    order = np.lexsort((ties, stamps, pd.factorize(ratings[F.USER_ID])[0]))
    by_user = ratings[F.USER_ID].to_numpy()[order]
    rank = pd.Series(by_user).groupby(by_user, sort=False).cumcount().to_numpy()
    size = pd.Series(by_user).groupby(by_user, sort=False).transform("size").to_numpy()
    n_eval = np.floor(size * eval_fraction + 0.5).astype("int64")
    n_eval = np.where(size >= 2, np.clip(n_eval, 1, size - 1), 0) if eval_fraction > 0 else 0
    is_eval = np.zeros(len(ratings), dtype=bool)
    is_eval[order] = rank >= size - n_eval
    # Each cut user's first eval rating (never its first rating: n_eval < size) and the
    # train rating just before it, in time order.
    first_eval = np.flatnonzero((rank == size - n_eval) & (n_eval > 0))
    sorted_stamps = stamps[order]
    tied = int(np.sum(sorted_stamps[first_eval] == sorted_stamps[first_eval - 1]))
    return is_eval, tied, len(first_eval)


def eval_mask(ratings: pd.DataFrame, eval_fraction: float) -> tuple[np.ndarray, str]:
    """(True = eval row, the rule used): the `split` column when present, else time_split;
    for untimed ratings a seeded random share per user: file order (often by item id)
    would hold out each user's last items in the file, not a sample of them. The time
    rule says for how many users equal timestamps straddle the cut (dates without a
    time, logs with many ratings per second): file order chose their eval ratings."""
    if SPLIT in ratings.columns:
        split = ratings[SPLIT].astype(str).to_numpy()
        if not np.isin(split, SPLITS).all():
            raise ValueError(f"split column must only hold {SPLITS}")
        return split == EVAL_SPLIT, "official"
    if untimed(ratings):
        shuffled = np.random.default_rng(RANDOM_SPLIT_SEED).permutation(len(ratings))
        return (time_split(ratings, eval_fraction, tie_break=shuffled),
                f"per-user random, {eval_fraction:g} to eval: the ratings have no time order "
                "(no timestamps, or all equal)")
    is_eval, tied, cut = _time_cut(ratings, eval_fraction)
    rule = f"per-user time, latest {eval_fraction:g} to eval"
    if tied:
        rule += (f"; for {tied} of {cut} users equal timestamps straddle the cut, "
                 "broken by file order")
    return is_eval, rule


def split_protocol(ratings: pd.DataFrame, is_eval: np.ndarray) -> str:
    """TIME_PROTOCOL when eval ratings follow each user's training ratings, else RANDOM_PROTOCOL.

    Decided from the data, not from the source's name, so a user's own `split`
    column gets the same treatment as ML-100K's official folds: a served query
    carries the user's *latest* items, which is the held-out future only on a
    time split. Users without training ratings count as following (nothing precedes);
    untimed ratings are RANDOM_PROTOCOL.
    """
    is_eval = np.asarray(is_eval, dtype=bool)
    if untimed(ratings):  # nothing is "latest": the served query's latest items are not
        return RANDOM_PROTOCOL
    if not is_eval.any():
        return TIME_PROTOCOL
    ts = ratings[F.TIMESTAMP].to_numpy().astype("int64")
    users = pd.factorize(ratings[F.USER_ID])[0]
    latest_train = np.full(users.max() + 1, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest_train, users[~is_eval], ts[~is_eval])
    share = float(np.mean(ts[is_eval] >= latest_train[users[is_eval]]))
    return TIME_PROTOCOL if share >= TIME_SPLIT_MIN_SHARE else RANDOM_PROTOCOL
