"""data/tags.py: item descriptions from the tags a model trained on the split could see."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from mtrec.contracts import features as F
from mtrec.data import generate
from mtrec.data.digest import dataset_digest
from mtrec.data.tags import (
    descriptions,
    make_tags,
    seen_in_training,
    with_tag_descriptions,
)

# User a: item 1 in training (t=10), items 2 and 3 held out (first at t=20).
# User b: everything in training. User c rated nothing.
RATINGS = pd.DataFrame({
    F.USER_ID: ["a", "a", "a", "b", "b"],
    F.ITEM_ID: ["1", "2", "3", "1", "2"],
    F.TIMESTAMP: [10, 20, 30, 5, 15],
})
IS_EVAL = np.array([False, True, True, False, False])
TAGS = make_tags(
    pd.Series(["a", "a", "a", "b", "c", "a", "b", "b"]),
    pd.Series([" 1", "2", "4", "2", "3", "1", "1", "5"]),
    pd.Series(["Funny", "sad", "late", "  Dark \t Comedy ", "never rated", "funny", "classic",
               "   "]),
    pd.Series(["12", "15", "25", "100", "1", "11", "3", "7"]),
)


def test_tags_are_stripped_lower_cased_and_empty_ones_dropped():
    assert TAGS[F.ITEM_ID].tolist() == ["1", "2", "4", "2", "3", "1", "1"]
    assert TAGS["tag"].tolist() == ["funny", "sad", "late", "dark comedy", "never rated",
                                    "funny", "classic"]
    assert TAGS[F.TIMESTAMP].dtype == "int64"


def test_tags_on_held_out_pairs_are_left_out():
    """a's tag on item 2 tells that a rated it (held out); a's later tag on item 4, which
    a never rated, describes the film; b has nothing held out, c rated nothing."""
    kept = seen_in_training(TAGS, RATINGS, IS_EVAL)
    assert list(zip(kept[F.USER_ID], kept[F.ITEM_ID], kept["tag"], strict=True)) == [
        ("a", "1", "funny"), ("a", "4", "late"), ("b", "2", "dark comedy"),
        ("c", "3", "never rated"), ("a", "1", "funny"), ("b", "1", "classic")]


def test_descriptions_list_distinct_tags_most_frequent_first():
    assert descriptions(seen_in_training(TAGS, RATINGS, IS_EVAL)) == {
        "1": "funny, classic", "4": "late", "2": "dark comedy", "3": "never rated"}
    # With nothing held out, every tag counts (first seen wins a tie).
    assert descriptions(seen_in_training(TAGS, RATINGS, np.zeros(5, bool)))["2"] == (
        "sad, dark comedy")


def test_items_get_the_descriptions_of_their_split():
    items = pd.DataFrame({F.ITEM_ID: ["1", "2", "4", "9"], F.DESCRIPTION: ["x"] * 4})
    got = with_tag_descriptions(items, TAGS, RATINGS, IS_EVAL)
    assert got[F.DESCRIPTION].tolist() == ["funny, classic", "dark comedy", "late", ""]
    assert with_tag_descriptions(items, None, RATINGS, IS_EVAL) is items  # no tags: as given


def test_the_dataset_digest_follows_the_tags():
    """Caches keyed on the ratings alone (benchmarks/quality_data.py) read examples whose
    descriptions an older tags rule had made."""
    dataset = generate(n_users=20, n_items=30, n_ratings=300, seed=1)
    tagged = dataclasses.replace(dataset, tags=TAGS)
    digests = {dataset_digest(d, {}) for d in (dataset, tagged,
                                              dataclasses.replace(dataset, tags=TAGS[:2]))}
    assert len(digests) == 3
    assert dataset_digest(tagged, {}) == dataset_digest(dataclasses.replace(tagged), {})
