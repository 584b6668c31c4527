"""A deterministic, MovieLens-like data set generated from a known latent structure.

Why: the pipeline needs a data set that is small, freely redistributable and
has *known* signal, so tests can check that a model learns something real.
Users have hidden genre affinities (partly explained by occupation, age group
and gender); items have 1-3 genres, genre-flavoured description words, a
hidden quality and a popularity. Which items a user rates depends on
popularity *and* affinity, and the rating on affinity + quality + noise, so
personalised retrieval beats popularity and item text carries signal.

`python -m mtrec.data.synthetic --out data/sample` regenerates the embedded
sample byte for byte. Memory is O(ratings + (users + items) x genres): the
users x items selection logits exist only a block of users at a time.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.data import synthetic_vocab as V
from mtrec.data.tables import (
    ITEMS,
    RATINGS,
    USERS,
    Dataset,
    empty_malformed,
    make_items,
    make_users,
)

START = 1_420_070_400  # 2015-01-01: every item is released before any rating
SPAN = 5 * 365 * 86_400  # ratings fall in 2015..2019
POPULARITY_WEIGHT = 1.0  # selection logit = POPULARITY_WEIGHT*log(pop) + AFFINITY_WEIGHT*match
AFFINITY_WEIGHT = 2.0
MIN_RATINGS_PER_USER = 5
BLOCK_CELLS = 2**20  # users x items per block of selection logits (8 MB of float64)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The hidden factors behind a generated data set (row i = user/item id number i+1)."""

    genres: tuple[str, ...]
    user_affinity: np.ndarray  # [n_users, n_genres]
    user_bias: np.ndarray  # [n_users]
    item_genres: np.ndarray  # [n_items, n_genres] 0/1
    item_quality: np.ndarray  # [n_items]
    item_popularity: np.ndarray  # [n_items] > 0

    def genre_shares(self) -> np.ndarray:
        """[n_items, n_genres] each item's genres weighted 1/k, so a match is a mean."""
        return self.item_genres / self.item_genres.sum(axis=1, keepdims=True)

    def match(self, users: slice = slice(None)) -> np.ndarray:
        """[n_users, n_items] mean affinity of each user for each item's genres.

        Dense: for tests on small sets. `users` picks a block of rows; generation
        uses `user_blocks` instead, which never holds the whole matrix.
        """
        return _match(self.user_affinity[users], self.genre_shares())

    def selection_logits(self, users: slice = slice(None)) -> np.ndarray:
        """[n_users, n_items] log-odds (up to a per-user constant) of rating an item."""
        return _logits(_log_popularity(self.item_popularity), self.match(users))

    def user_blocks(
        self, max_cells: int | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first user, selection logits, match) for consecutive blocks of users.

        Each block has at most `max_cells` (default BLOCK_CELLS) users x items, but
        at least one user, so memory is O(items) however many users there are.
        """
        n_users, n_items = len(self.user_affinity), len(self.item_popularity)
        rows = max(1, (max_cells or BLOCK_CELLS) // max(1, n_items))
        shares = self.genre_shares()
        log_pop = _log_popularity(self.item_popularity)
        for start in range(0, n_users, rows):
            match = _match(self.user_affinity[start : start + rows], shares)
            yield start, _logits(log_pop, match), match


def _match(affinity: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """[len(affinity), n_items] user-genre affinity x item genre shares.

    einsum rather than matmul on purpose: it reduces each (user, item) pair on
    its own, so a block of rows equals the same rows of the full product bit for
    bit (BLAS may not), and it is the arithmetic the committed sample was made with.
    """
    return np.einsum("ug,ig->ui", affinity, shares, optimize=False)


def _log_popularity(popularity: np.ndarray) -> np.ndarray:
    return POPULARITY_WEIGHT * np.log(popularity)


def _logits(log_popularity: np.ndarray, match: np.ndarray) -> np.ndarray:
    return log_popularity + AFFINITY_WEIGHT * match


def _users(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    n_genres = len(V.GENRES)
    occ = rng.choice(len(V.OCCUPATIONS), n, p=_norm(V.OCCUPATION_WEIGHTS))
    group = rng.choice(len(V.AGE_GROUPS), n, p=_norm(V.AGE_WEIGHTS))
    low, high = np.array(V.AGE_GROUPS).T
    age = rng.integers(low[group], high[group] + 1)
    gender_idx = rng.choice(3, n, p=[0.69, 0.29, 0.02])
    age = np.where(rng.random(n) < 0.02, 0, age)  # a few users hide their age
    occ_proto = rng.normal(0.0, 1.0, (len(V.OCCUPATIONS), n_genres))
    age_proto = rng.normal(0.0, 1.0, (len(V.AGE_GROUPS), n_genres))
    gender_proto = rng.normal(0.0, 1.0, (3, n_genres))
    affinity = (0.8 * occ_proto[occ] + 0.6 * age_proto[group] + 0.4 * gender_proto[gender_idx]
                + rng.normal(0.0, 1.0, (n, n_genres)))
    bias = rng.normal(0.0, 0.35, n)
    users = make_users(
        pd.Series([f"u{i + 1}" for i in range(n)]),
        pd.Series(age),
        pd.Series(np.array(["M", "F", F.UNKNOWN])[gender_idx]),
        pd.Series(np.array(V.OCCUPATIONS)[occ]),
    )
    return users, affinity, bias


def _title(rng: np.random.Generator, genres: list[str]) -> str:
    words = []
    for _ in range(rng.integers(1, 4)):
        syllables = rng.choice(V.SYLLABLES, rng.integers(2, 4))
        words.append("".join(syllables).capitalize())
    if rng.random() < 0.3:  # some titles name their theme ("Kalo Dragon")
        words.append(str(rng.choice(V.GENRE_WORDS[genres[0]])).capitalize())
    return " ".join(words)


def _description(rng: np.random.Generator, genres: list[str]) -> str:
    words = []
    for _ in range(rng.integers(8, 17)):
        if rng.random() < 0.45:
            words.append(str(rng.choice(V.GENRE_WORDS[genres[rng.integers(len(genres))]])))
        else:
            words.append(str(rng.choice(V.FILLER_WORDS)))
    return " ".join(words)


def _items(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                      np.ndarray]:
    n_genres = len(V.GENRES)
    multi_hot = np.zeros((n, n_genres))
    titles, descriptions, genre_lists = [], [], []
    for i in range(n):
        k = rng.choice(3, p=[0.45, 0.35, 0.2]) + 1
        chosen = np.sort(rng.choice(n_genres, k, replace=False, p=_norm(V.GENRE_WEIGHTS)))
        multi_hot[i, chosen] = 1.0
        names = [V.GENRES[g] for g in chosen]
        genre_lists.append(names)
        titles.append(_title(rng, names))
        descriptions.append(_description(rng, names))
    quality = rng.normal(0.0, 0.6, n)
    popularity = np.exp(rng.normal(0.0, 1.0, n) + 0.5 * quality)
    year = 2014 - np.minimum(rng.exponential(12.0, n).astype("int64"), 84)
    items = make_items(
        pd.Series([f"i{i + 1}" for i in range(n)]),
        pd.Series(titles),
        pd.Series(genre_lists, dtype=object),
        pd.Series(descriptions),
        pd.Series(year),
    )
    return items, multi_hot, quality, popularity


def _counts(rng: np.random.Generator, n_users: int, n_items: int, n_ratings: int) -> np.ndarray:
    """Ratings per user: a heavy-tailed activity, at least MIN_RATINGS_PER_USER each."""
    floor = min(MIN_RATINGS_PER_USER, n_items)
    cap = max(floor, int(0.6 * n_items))
    if n_ratings > n_users * cap or n_ratings < n_users * floor:
        raise ValueError(f"{n_ratings} ratings do not fit {n_users} users x {n_items} items")
    activity = rng.lognormal(0.0, 0.8, n_users)
    counts = floor + rng.multinomial(n_ratings - floor * n_users, activity / activity.sum())
    while (over := counts > cap).any():  # move the excess of the most active users
        excess = int((counts[over] - cap).sum())
        counts[over] = cap
        room = np.flatnonzero(counts < cap)
        counts[room] += rng.multinomial(excess, np.ones(len(room)) / len(room))
    return counts


def _top_k(keys: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k largest keys, largest first, ties by index.

    Equals np.argsort(-keys, kind="stable")[:k] (what the sample was generated
    with) but partitions first: O(items + k log k) instead of O(items log items).
    """
    neg = -keys
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= len(neg):
        return np.argsort(neg, kind="stable")
    kth = np.partition(neg, k - 1)[k - 1]
    below = np.flatnonzero(neg < kth)  # fewer than k: all of them are in
    ties = np.flatnonzero(neg == kth)[: k - len(below)]  # the lowest indices win a tie
    chosen = np.concatenate([below, ties])
    return chosen[np.argsort(neg[chosen], kind="stable")]


def _user_ratings(
    rng: np.random.Generator, logits: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """One user's rated items (in rating order) and timestamps.

    The random draws and their order are the generator's contract: changing
    them changes every data set, the committed sample included.
    """
    # Gumbel top-k = sampling without replacement proportional to exp(logit).
    chosen = _top_k(logits + rng.gumbel(size=len(logits)), count)
    start = START + rng.integers(0, int(0.8 * SPAN))
    active = max(86_400, int(rng.exponential(120 * 86_400)))
    stamps = np.sort(start + rng.integers(0, active, count))
    return rng.permutation(chosen), np.minimum(stamps, START + SPAN - 1)


def _interactions(
    rng: np.random.Generator, truth: GroundTruth, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item index, timestamp, match) of every rating, users in order.

    Selection logits are computed a block of users at a time and the match is
    kept only for the rated pairs, so memory is O(ratings + block), not users x items.
    """
    items, times, match = [], [], []
    for first, logits, block_match in truth.user_blocks():
        for row in range(len(logits)):
            chosen, stamps = _user_ratings(rng, logits[row], counts[first + row])
            items.append(chosen)
            times.append(stamps)
            match.append(block_match[row, chosen])
    return np.concatenate(items), np.concatenate(times), np.concatenate(match)


def generate_with_truth(
    n_users: int = 600, n_items: int = 800, n_ratings: int = 40_000, seed: int = 0
) -> tuple[Dataset, GroundTruth]:
    """Generate the data set and the hidden factors it was drawn from."""
    rng = np.random.default_rng(seed)
    users, affinity, bias = _users(rng, n_users)
    items, multi_hot, quality, popularity = _items(rng, n_items)
    truth = GroundTruth(V.GENRES, affinity, bias, multi_hot, quality, popularity)
    counts = _counts(rng, n_users, n_items, n_ratings)
    i_idx, times, match = _interactions(rng, truth, counts)
    u_idx = np.repeat(np.arange(n_users), counts)
    noise = rng.normal(0.0, 0.6, len(u_idx))
    raw = 2.6 + 0.6 * match + quality[i_idx] + bias[u_idx] + noise
    ratings = pd.DataFrame(
        {
            F.USER_ID: users[F.USER_ID].to_numpy()[u_idx],
            F.ITEM_ID: items[F.ITEM_ID].to_numpy()[i_idx],
            F.RATING: np.clip(np.rint(raw), 1, 5).astype("float64"),
            F.TIMESTAMP: times.astype("int64"),
        }
    )
    dataset = Dataset("synthetic", ratings, users, items, empty_malformed())
    return dataset, truth


def generate(
    n_users: int = 600, n_items: int = 800, n_ratings: int = 40_000, seed: int = 0
) -> Dataset:
    """A deterministic synthetic data set (same arguments, same data)."""
    return generate_with_truth(n_users, n_items, n_ratings, seed)[0]


def ground_truth(
    n_users: int = 600, n_items: int = 800, n_ratings: int = 40_000, seed: int = 0
) -> GroundTruth:
    """The hidden factors of `generate(...)` with the same arguments."""
    return generate_with_truth(n_users, n_items, n_ratings, seed)[1]


def write_generic(dataset: Dataset, out: str | Path) -> list[Path]:
    """Write ratings/users/items CSVs in the generic format (byte-stable for a given input)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = dataset.items.assign(**{F.GENRES: dataset.items[F.GENRES].map("|".join)})
    ratings = dataset.ratings.assign(**{F.RATING: dataset.ratings[F.RATING].map("{:g}".format)})
    paths = []
    for name, frame in ((RATINGS, ratings), (USERS, dataset.users), (ITEMS, items)):
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        paths.append(path)
    return paths


def _norm(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype="float64")
    return w / w.sum()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for ratings/users/items.csv")
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--items", type=int, default=800)
    parser.add_argument("--ratings", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dataset = generate(args.users, args.items, args.ratings, args.seed)
    for path in write_generic(dataset, args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
