"""Item descriptions from user tags (ml-latest-small's tags.csv), without held-out ratings.

A tag is an interaction: the user who tags a film watched it. Until 2026-12-07
every tag went into its item's description. On ml-latest-small's time split,
815 of the 3,683 tags were on a (user, item) pair whose rating is held out, and
of the 70 items without training ratings that had tags, 49 were tagged by the
user who rated them in the held-out period: in the served top 10, 8 of the 15
hits on items without training ratings were items the user had tagged, so the
text told the model what the user would rate next.

So the loader keeps the tags as rows (`Dataset.tags`), and the descriptions are
made once the split is known (`data/examples.write_examples`), leaving out every
tag on a held-out (user, item) pair. The other tags stay, written before or
after: they describe the film, as a catalogue's text does when the model serves
(2,868 tags on 1,276 items on that split). A stricter rule, only tags written
before their author's first held-out rating, kept 1,412 tags on 297 items, and
leaks nothing more that touches a held-out rating.
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
    lower-cased (empty ones dropped), timestamps in seconds (unreadable ones: 0)."""
    words = tags.fillna("").astype(str).map(lambda tag: " ".join(tag.split()).lower())
    seconds = pd.to_numeric(timestamps, errors="coerce").fillna(0).astype("int64")
    frame = pd.DataFrame({F.USER_ID: users.astype(str).str.strip().to_numpy(),
                          F.ITEM_ID: items.astype(str).str.strip().to_numpy(),
                          TAG: words.to_numpy(), F.TIMESTAMP: seconds.to_numpy()})
    return frame.loc[frame[TAG] != ""].reset_index(drop=True)


def before_held_out(tags: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    """The tags a model that never saw the `held_out` ratings may read: all but those on
    a held-out (user, item) pair."""
    pairs = pd.MultiIndex.from_frame(held_out[[F.USER_ID, F.ITEM_ID]].astype(str))
    on_held_out = pd.MultiIndex.from_frame(tags[[F.USER_ID, F.ITEM_ID]]).isin(pairs)
    return tags.loc[~on_held_out]


def seen_in_training(tags: pd.DataFrame, ratings: pd.DataFrame, is_eval: np.ndarray
                     ) -> pd.DataFrame:
    """The tags a model trained on the non-eval `ratings` may read."""
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
