"""Checks across a request's inputs, made on their declared shapes before the model runs.

Rows: every batched input of one request carries the same rows (dim 0): `score`'s
item_ids row i belongs to user_id i. TF refuses some mismatches (`params.shape[0]`
...) and broadcasts others, and the batcher merged and sliced requests by one input's
rows, so a request with 2 users and 1 item row merged with one of 1 user and 2 item
rows answered both with each other's data. Refused here whether batching is on or off.

Pairs: `recommend` and `recommend_from_items` re-rank max(100, 4k) first-stage
candidates a row, at most the catalogue (models/serving_module.py `_candidates`),
through the pair heads, and `score` runs them on every (user, item) pair it is given.
Their memory follows rows x candidates, not the request's bytes or rows alone: about
3 KB a pair on the sample model, so 8,192 rows at k = 800 took 21.8 GB
(RequestLimits.max_pairs, serving/server_args.py). `retrieve` runs no pair heads but
scores every catalogue item a row: a float32 [rows, catalogue] similarity, 4.0-4.3
bytes a score in peak RSS growth (matmul + top_k at 1M x 128-d items, 16-256 rows and
256 x 100K, 2026-12-07), so 8,192 rows over 1M items would take ~33 GB. It is held to
the same memory as SCORES_PER_PAIR scores a pair. `recommend`'s first stage scores the
catalogue too, unless its IVF index answers (models/ivf.py), which the server cannot
see; only its pairs are counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from mtrec.contracts import signatures as S
from mtrec.serving.errors import ServingError, invalid_argument

MIN_CANDIDATES, CANDIDATES_PER_K = S.MIN_CANDIDATES, S.CANDIDATES_PER_K
RERANKING = frozenset({S.RECOMMEND, S.RECOMMEND_FROM_ITEMS})
# retrieve's similarity scores that take a pair's memory: ~3 KB / ~4 B (above).
SCORES_PER_PAIR = 768
# A k no catalogue reaches (k is an int32): the model's refusal names the catalogue size.
PROBE_K = 2**31 - 1
# Our server's cleaned assertion text (signature.clean_tf_message):
# "k must not exceed the catalogue size (k = 9, limit = 5)".
_PAST_CATALOGUE = re.compile(re.escape(S.K_PAST_CATALOGUE) + r".*?limit = (\d+)\)", re.S)

Shapes = Mapping[str, tuple[int, ...]]


def check_rows_agree(signature: str, shapes: Shapes, batched: Sequence[str]) -> int:
    """The rows every batched input of the request shares; INVALID_ARGUMENT when two
    disagree. `batched` is in reading order: its first name owns the rows of the rest
    (score: "user_id has 2 rows but item_ids has 1: each row of item_ids belongs to
    one user_id")."""
    owner = batched[0]
    rows = shapes[owner][0]
    for key in batched[1:]:
        if shapes[key][0] != rows:
            raise invalid_argument(
                f"{owner} has {_rows(rows)} but {key} has "
                f"{shapes[key][0]}: each row of {key} belongs to one {owner} "
                f"(signature '{signature}': every input's dim 0 is the batch)"
            )
    return rows


def _rows(n: int) -> str:
    return f"{n} row{'' if n == 1 else 's'}"


def row_owner_order(names: Sequence[str], ranks: Mapping[str, int]) -> tuple[str, ...]:
    """Batched input names, the one whose rows the others belong to first: the lowest
    rank (score's user_id [B] before item_ids [B, n]), ids before other features."""
    return tuple(sorted(names, key=lambda n: (ranks[n], not n.endswith("_id"), n)))


def catalogue_from_message(message: str) -> int | None:
    """The catalogue size a refusal of a k past the catalogue names, else None."""
    match = _PAST_CATALOGUE.search(message)
    return int(match.group(1)) if match else None


class PairBudget:
    """The (user, item) pairs a request has the model score, against `limit` (0: none).

    `catalogue` gives the catalogue size the top-k signatures are capped at (asked of
    the model once, when a request first needs it; 0 when it cannot say).
    """

    def __init__(self, signature: str, inputs: Mapping[str, int], limit: int,
                 catalogue: Callable[[], int]) -> None:
        self.signature = signature
        self.limit = limit
        self._catalogue = catalogue
        ranks = dict(inputs)
        self._reranks = (signature in RERANKING and ranks.get(S.K) == 0
                         and any(r >= 1 for r in ranks.values()))
        self._scores = signature == S.SCORE and ranks.get(S.ITEM_IDS) == 2
        self._similarities = (signature == S.RETRIEVE and ranks.get(S.K) == 0
                              and ranks.get(S.USER_ID) == 1)
        self.applies = bool(limit) and (self._reranks or self._scores or self._similarities)

    def pairs(self, rows: int, shapes: Shapes, k: Callable[[], int]) -> int:
        """This request's pairs (0: not counted here), INVALID_ARGUMENT past the limit."""
        if not self.applies:
            return 0
        if self._scores:
            items = shapes[S.ITEM_IDS][1]
            pairs = rows * items
            if pairs > self.limit:
                raise self._refusal(f"{_rows(rows)} x {items} item ids = {pairs} pairs", False)
            return pairs
        value = k()
        if value < 1:
            return 0  # the model refuses it in its own words
        if self._similarities:
            return self._similarity_pairs(rows, value)
        wanted = max(MIN_CANDIDATES, CANDIDATES_PER_K * value)
        per_row = wanted
        if rows * wanted > self.limit:  # only then is the catalogue worth asking for
            catalogue = self._catalogue()
            if catalogue and value > catalogue:
                return 0  # past the catalogue: the model's refusal names its size
            per_row = min(wanted, catalogue) if catalogue else wanted
        pairs = rows * per_row
        if pairs > self.limit:
            cap = f", the catalogue's {per_row}" if per_row < wanted else ""
            raise self._refusal(
                f"{_rows(rows)} x {per_row} candidates = {pairs} pairs (k = {value}: "
                f"max({MIN_CANDIDATES}, {CANDIDATES_PER_K}k) candidates a row{cap})", True)
        return pairs

    def _similarity_pairs(self, rows: int, k: int) -> int:
        """retrieve's rows x catalogue scores, in pairs' worth of memory (rounded up)."""
        catalogue = self._catalogue()
        if not catalogue or k > catalogue:
            return 0  # unknown, or past it: the model's refusal names its size
        scores = rows * catalogue
        pairs = -(-scores // SCORES_PER_PAIR)
        if pairs > self.limit:
            raise self._refusal(
                f"{_rows(rows)} x {catalogue} catalogue items = {scores} similarity scores, "
                f"as much memory as {pairs} pairs ({SCORES_PER_PAIR} scores a pair)", False)
        return pairs

    def _refusal(self, product: str, lower_k: bool) -> ServingError:
        return invalid_argument(
            f"signature '{self.signature}' would score {product}; this server takes at most "
            f"{self.limit} (user, item) pairs per request (--max-request-pairs): split the "
            f"batch{' or lower k' if lower_k else ''}"
        )
