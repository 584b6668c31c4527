"""Item descriptions from user tags (ml-latest-small's tags.csv), as training may see them.

A tag is an interaction: the user who tags a film watched it. Until 2026-12-07
every tag went into its item's description, whenever it was written. On
ml-latest-small's time split, 2,264 of 3,683 tags were written after their
author's first held-out rating, and 67 of the 70 items without training ratings
that had tags had only such tags (49 of them by the user who rated the item in
the held-out period): in the served top 10, 8 of the 15 hits on items without
training ratings were items the user had tagged, so the text of those items
told the model what the user would watch next.

So the loader keeps the tags as rows (`Dataset.tags`), and the descriptions are
made once the split is known (`data/examples.write_examples`), from the tags a
model trained on that split could have seen: a tag counts when its author wrote
it before their first held-out rating, and not on an item whose rating by that
author is held out.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from mtrec.contracts import features as F

TAG = "tag"
TAG_COLUMNS = (F.USER_ID, F.ITEM_ID, TAG, F.TIMESTAMP)


def empty_tags() -> pd.DataFrame:
    return pd.DataFrame({F.USER_ID: pd.Series(dtype=object), F.ITEM_ID: pd.Series(dtype=object),
                         TAG: pd.Series(dtype=object), F.TIMESTAMP: pd.Series(dtype="int64")})


def make_tags(users: pd.Series, items: pd.Series, tags: pd.Series, timestamps: pd.Series
              ) -> pd.DataFrame:
    """The canonical tag rows: stripped ids, the tag's words joined by one space and
    lower-cased (empty ones dropped), timestamps in seconds (unreadable ones: 0, the
    earliest, so such a tag counts only for authors with nothing held out)."""
    words = tags.fillna("").astype(str).map(lambda tag: " ".join(tag.split()).lower())
    seconds = pd.to_numeric(timestamps, errors="coerce").fillna(0).astype("int64")
    frame = pd.DataFrame({F.USER_ID: users.astype(str).str.strip().to_numpy(),
                          F.ITEM_ID: items.astype(str).str.strip().to_numpy(),
                          TAG: words.to_numpy(), F.TIMESTAMP: seconds.to_numpy()})
    return frame.loc[frame[TAG] != ""].reset_index(drop=True)


def before_held_out(tags: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    """The tags a model that never saw the `held_out` ratings could have seen: written
    before their author's first held-out rating, and not on an item whose rating by the
    author is held out. Authors with nothing held out keep all their tags."""
    first_eval = held_out.groupby(F.USER_ID)[F.TIMESTAMP].min()
    cutoff = tags[F.USER_ID].map(first_eval)
    before = cutoff.isna() | (tags[F.TIMESTAMP] < cutoff)
    pairs = pd.MultiIndex.from_frame(held_out[[F.USER_ID, F.ITEM_ID]])
    on_held_out = pd.MultiIndex.from_frame(tags[[F.USER_ID, F.ITEM_ID]]).isin(pairs)
    return tags.loc[before.to_numpy() & ~on_held_out]


def seen_in_training(tags: pd.DataFrame, ratings: pd.DataFrame, is_eval: np.ndarray
                     ) -> pd.DataFrame:
    """The tags a model trained on the non-eval `ratings` could have seen."""
    return before_held_out(tags, ratings.loc[is_eval])


def descriptions(tags: pd.DataFrame) -> dict[str, str]:
    """item_id -> its distinct tags, most frequent first (ties: first seen), comma-joined."""
    counts: dict[str, Counter[str]] = {}
    for item, tag in zip(tags[F.ITEM_ID], tags[TAG], strict=True):
        counts.setdefault(item, Counter())[tag] += 1
    # Counter.most_common keeps first-insertion order among equal counts.
    return {item: ", ".join(t for t, _ in c.most_common()) for item, c in counts.items()}


def with_tag_descriptions(items: pd.DataFrame, tags: pd.DataFrame | None,
                          ratings: pd.DataFrame, is_eval: np.ndarray) -> pd.DataFrame:
    """`items` with each description made from the tags training could have seen (""
    without any); unchanged when the source has no tags (None)."""
    if tags is None:
        return items
    described = descriptions(seen_in_training(tags, ratings, is_eval))
    return items.assign(**{F.DESCRIPTION: items[F.ITEM_ID].astype(str).map(described)
                           .fillna("").to_numpy()})
