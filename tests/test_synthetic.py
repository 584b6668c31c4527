"""Synthetic data: deterministic, matches the embedded sample, and carries real signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtrec.contracts import features as F
from mtrec.data import synthetic
from mtrec.data import synthetic_vocab as V
from mtrec.data.cleaning import clean
from mtrec.data.loaders import SAMPLE_DIR
from mtrec.data.synthetic import generate, generate_with_truth, main

SMALL = dict(n_users=120, n_items=150, n_ratings=4000)


def test_deterministic_and_seeded() -> None:
    a, b, c = generate(**SMALL), generate(**SMALL), generate(**SMALL, seed=1)
    for table in ("ratings", "users", "items"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert not a.ratings.equals(c.ratings)


def test_shape_and_ranges() -> None:
    ds = generate(**SMALL)
    assert len(ds.ratings) == 4000 and len(ds.users) == 120 and len(ds.items) == 150
    assert set(ds.ratings[F.RATING]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ds.ratings.groupby(F.USER_ID).size().min() >= 5
    assert not ds.ratings.duplicated([F.USER_ID, F.ITEM_ID]).any()
    genre_counts = ds.items[F.GENRES].map(len)
    assert genre_counts.between(1, 3).all()
    assert set().union(*ds.items[F.GENRES]) <= set(V.GENRES)
    assert (ds.items[F.DESCRIPTION].str.len() > 0).all()
    assert ds.items[F.YEAR].between(1930, 2014).all()
    # Every rating happens after the rated item's release year.
    years = ds.ratings[F.ITEM_ID].map(ds.items.set_index(F.ITEM_ID)[F.YEAR])
    rated = pd.to_datetime(ds.ratings[F.TIMESTAMP], unit="s").dt.year
    assert (rated >= years).all()
    assert clean(ds).counts["rejected"] == 0


def sha256_dir(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob("*.csv"))}


def test_committed_sample_is_generator_output(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    assert sha256_dir(tmp_path) == sha256_dir(SAMPLE_DIR)
    assert set(sha256_dir(SAMPLE_DIR)) == {"ratings.csv", "users.csv", "items.csv"}
    assert sum(p.stat().st_size for p in SAMPLE_DIR.glob("*.csv")) < 5_000_000


def hit_rate(scores: np.ndarray, seen: np.ndarray, held_out: np.ndarray, k: int = 10) -> float:
    scores = np.where(seen > 0, -np.inf, scores)
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([held_out[u] in top[u] for u in range(len(held_out))]))


def test_personalisation_beats_popularity() -> None:
    """Leave-last-out HR@10: a true-affinity oracle and item-item co-occurrence both beat
    popularity by a wide margin, so personalised retrieval has something to learn."""
    ds, truth = generate_with_truth(n_users=300, n_items=400, n_ratings=15_000)
    r = ds.ratings.assign(
        u=ds.ratings[F.USER_ID].str[1:].astype(int) - 1,
        i=ds.ratings[F.ITEM_ID].str[1:].astype(int) - 1,
    )
    r = r.sort_values(["u", F.TIMESTAMP], kind="stable")
    last = r.groupby("u").tail(1)
    train = r.drop(last.index)
    seen = np.zeros((300, 400))
    seen[train["u"], train["i"]] = 1.0
    held_out = last.set_index("u")["i"].sort_index().to_numpy()
    popularity = seen.sum(axis=0)
    pop_hr = hit_rate(np.tile(popularity, (300, 1)), seen, held_out)
    oracle_hr = hit_rate(truth.selection_logits(), seen, held_out)
    cooc = seen.T @ seen
    np.fill_diagonal(cooc, 0.0)
    cooc /= np.sqrt(np.outer(popularity, popularity)) + 1e-9
    item_knn_hr = hit_rate(seen @ cooc, seen, held_out)
    assert oracle_hr > 2 * pop_hr
    assert item_knn_hr > 1.5 * pop_hr


def test_ratings_follow_affinity_and_quality() -> None:
    ds, truth = generate_with_truth(**SMALL)
    u = ds.ratings[F.USER_ID].str[1:].astype(int).to_numpy() - 1
    i = ds.ratings[F.ITEM_ID].str[1:].astype(int).to_numpy() - 1
    rating = ds.ratings[F.RATING].to_numpy()
    assert np.corrcoef(rating, truth.match()[u, i])[0, 1] > 0.2
    assert np.corrcoef(rating, truth.item_quality[i])[0, 1] > 0.3


def test_text_and_demographics_carry_signal() -> None:
    ds, truth = generate_with_truth(**SMALL)
    # Description words come from the item's own genres far more than from others.
    own = other = 0
    for genres, text in zip(ds.items[F.GENRES], ds.items[F.DESCRIPTION], strict=True):
        words = set(text.split())
        for genre in V.GENRES:
            hits = len(words & set(V.GENRE_WORDS[genre]))
            own, other = (own + hits, other) if genre in genres else (own, other + hits)
    assert own > 5 * other
    # Occupation explains part of the hidden affinity (between-group variance).
    occupation = ds.users[F.OCCUPATION].to_numpy()
    affinity = pd.DataFrame(truth.user_affinity)
    explained = affinity.groupby(occupation).transform("mean").var().mean()
    assert explained / affinity.var().mean() > 0.1


def dense_reference(n_users: int, n_items: int, n_ratings: int, seed: int = 0) -> pd.DataFrame:
    """Ratings as the generator first made them, from dense [users, items] logits
    (O(users x items) memory); the blocked generator must reproduce them exactly."""
    rng = np.random.default_rng(seed)
    users, affinity, bias = synthetic._users(rng, n_users)
    items, multi_hot, quality, popularity = synthetic._items(rng, n_items)
    truth = synthetic.GroundTruth(V.GENRES, affinity, bias, multi_hot, quality, popularity)
    logits, match = truth.selection_logits(), truth.match()
    counts = synthetic._counts(rng, n_users, n_items, n_ratings)
    user_idx, item_idx, times = [], [], []
    for u in range(n_users):
        keys = logits[u] + rng.gumbel(size=n_items)
        chosen = np.argsort(-keys, kind="stable")[: counts[u]]
        start = synthetic.START + rng.integers(0, int(0.8 * synthetic.SPAN))
        active = max(86_400, int(rng.exponential(120 * 86_400)))
        stamps = np.sort(start + rng.integers(0, active, counts[u]))
        user_idx.append(np.full(counts[u], u))
        item_idx.append(rng.permutation(chosen))
        times.append(np.minimum(stamps, synthetic.START + synthetic.SPAN - 1))
    u_idx, i_idx = np.concatenate(user_idx), np.concatenate(item_idx)
    noise = rng.normal(0.0, 0.6, len(u_idx))
    raw = 2.6 + 0.6 * match[u_idx, i_idx] + quality[i_idx] + bias[u_idx] + noise
    return pd.DataFrame(
        {
            F.USER_ID: users[F.USER_ID].to_numpy()[u_idx],
            F.ITEM_ID: items[F.ITEM_ID].to_numpy()[i_idx],
            F.RATING: np.clip(np.rint(raw), 1, 5).astype("float64"),
            F.TIMESTAMP: np.concatenate(times).astype("int64"),
        }
    )


@pytest.mark.parametrize("rows_per_block", [1, 7, 1000])
def test_blocked_generation_equals_dense(monkeypatch, rows_per_block: int) -> None:
    """Blocks of users (the last one partial) change nothing, bit for bit."""
    monkeypatch.setattr(synthetic, "BLOCK_CELLS", rows_per_block * SMALL["n_items"])
    pd.testing.assert_frame_equal(generate(**SMALL).ratings, dense_reference(**SMALL))


def test_user_blocks_are_rows_of_the_dense_matrices() -> None:
    truth = generate_with_truth(**SMALL)[1]
    logits, match = truth.selection_logits(), truth.match()
    blocks = list(truth.user_blocks(max_cells=7 * SMALL["n_items"] + 3))
    assert [first for first, _, _ in blocks] == list(range(0, SMALL["n_users"], 7))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), logits)
    np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), match)


@pytest.mark.parametrize("k", [0, 1, 5, 49, 50, 51, 200, 300])
def test_top_k_equals_stable_argsort(k: int) -> None:
    rng = np.random.default_rng(k)
    for keys in (rng.normal(size=300), rng.integers(0, 6, 300).astype(float)):  # ties
        expected = np.argsort(-keys, kind="stable")[:k]
        np.testing.assert_array_equal(synthetic._top_k(keys, k), expected)


@pytest.mark.parametrize("bad", [dict(n_ratings=10), dict(n_items=5, n_ratings=4000)])
def test_impossible_sizes_fail(bad: dict) -> None:
    with pytest.raises(ValueError):
        generate(**{**SMALL, **bad})
