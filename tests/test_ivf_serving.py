"""recommend with the IVF first stage (models/ivf.py) in a ServingModule: a user's answer
does not depend on who else is in the request, so the export's answer cache
(models/answer_cache.py, built 64 users a call) answers as a request of one does."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models.ivf import probed_positions
from tests.test_cold_popularity import module_with

# 8 first-stage candidates instead of 100 (the synthetic catalogue has 80 items), so the
# cache holds k <= 2; a user whose two probed clusters (of 9) hold 8 unseen items is
# answered by the index (about 4 in 10 of the 60 users), the others by the exact scan.
CANDIDATES, K = 8, tf.constant(2)


@pytest.fixture(scope="module")
def module(transformed_synthetic):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S, "MIN_CANDIDATES", CANDIDATES)
        module = module_with(transformed_synthetic, {
            "item_item_weight": 0.0, "ivf_min_items": 1, "ivf_nprobe": 2,
            "light_user_items": 0}, cache_users=True)
    assert module.ivf is not None and module.answers is not None
    assert module.answers.depth == 2
    return module


def _users(transformed) -> list[str]:
    vocab = transformed[0].vocabulary_by_name(F.USER_VOCAB)
    return [v.decode() if isinstance(v, bytes) else v for v in vocab]


def _short(module, user_idx: np.ndarray) -> np.ndarray:
    """Which users' probed clusters hold fewer than CANDIDATES unseen items (counted
    here, not by the code under test)."""
    idx = tf.constant(user_idx, tf.int64)
    query = module.model.retrieval_vector(module._query(None, idx)[0])
    ivf = module.ivf
    probed = probed_positions(query, ivf.centroids, ivf.splits, ivf.positions, ivf.nprobe)
    seen = module._seen(idx).to_list()
    return np.array([len(set(row) - set(done)) < CANDIDATES
                     for row, done in zip(probed.to_list(), seen, strict=True)])


def test_the_cache_built_in_batches_answers_as_a_request_of_one(module, transformed_synthetic):
    """The cached answers (one build call of all 60 users, the padding row too), the
    computed path for all users at once, and for each user alone: the same lists.
    Before each row fell back alone, a batch with one short user took the exact scan
    for every user, so the cache held the exact answers of users a request of one
    answers from the index (on this model, some of those lists differ)."""
    users = _users(transformed_synthetic)
    short = _short(module, np.arange(1, len(users) + 1))
    assert short.any() and not short.all()  # both paths in the cache's batch
    ids = tf.constant(users)
    cached = module.recommend(user_id=ids, k=K)
    # recommend is traced with the cache: the computed path in a function of its own.
    computed = tf.function(lambda ids, k: module._recommend_rows(module._user_idx(ids), k),
                           input_signature=[tf.TensorSpec([None], tf.string),
                                            tf.TensorSpec([], tf.int32)])
    batch = computed(ids, K)
    alone = [computed(ids[u:u + 1], K) for u in range(len(users))]
    for key in ("item_ids", "scores", "ratings"):
        one = np.concatenate([a[key].numpy() for a in alone])
        if key == "item_ids":
            assert cached[key].numpy().tolist() == one.tolist() == batch[key].numpy().tolist()
        else:
            np.testing.assert_allclose(cached[key], one, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(batch[key], one, rtol=1e-5, atol=1e-5)
