"""Ratings on another scale than mtrec's (0.5-5): 1-10, 0-100, play counts, 0/1.

Cleaning rejects a rating outside the scale, one row at a time; when many are, the
log is on another scale and the rest alone would teach the model part of it, so
cleaning stops with the message built here (what the values look like, and the
mapping or setting that reads them).
"""

from __future__ import annotations

import pandas as pd

from mtrec.contracts import features as F

# Out-of-range ratings in more than this share of the rows (and at least
# OTHER_SCALE_MIN_ROWS of them) are another scale (0-4, 1-10, 0-100) or a marker
# (0 = not rated), not typos: the rest alone would teach the model part of the
# user's scale (a 1-10 log kept its 1-5 half, 45% rejected, under
# --max-reject-fraction's 50%; a 0-4 log lost its 0s, 20%).
OTHER_SCALE_FRACTION = 0.1
OTHER_SCALE_MIN_ROWS = 10


def _counts(ratings: pd.Series) -> bool:
    """Whether whole, positive "ratings" are counts (plays, views): past any rating scale
    (> 100), or heavy-tailed (the median under a twentieth of the largest). A factor
    that maps the largest to 5 puts most counts under 0.5; a 0-100 scale's median is not
    so low."""
    whole = bool((ratings == ratings.round()).all()) and float(ratings.min()) >= 1
    high = float(ratings.max())
    return whole and (high > 100 or float(ratings.median()) < high / 20)


def other_scale_message(ratings: pd.DataFrame, out_of_range: pd.Series, name: str
                        ) -> str | None:
    """The message that stops a log whose ratings look like another scale; else None.
    `out_of_range`: the rows cleaning rejects as out of [MIN_RATING, MAX_RATING]."""
    out = pd.to_numeric(ratings.loc[out_of_range, F.RATING])
    if len(out) < OTHER_SCALE_MIN_ROWS or len(out) <= OTHER_SCALE_FRACTION * len(ratings):
        return None
    low, high = float(out.min()), float(out.max())
    seen = f"all {low:g}" if low == high else f"from {low:g} to {high:g}"
    found = (f"{name}: {len(out)} of {len(ratings)} ratings ({len(out) / len(ratings):.0%}) "
             f"are outside {F.MIN_RATING:g}-{F.MAX_RATING:g} ({seen}), the scale mtrec reads. ")
    every = pd.to_numeric(ratings[F.RATING], errors="coerce").dropna()
    values = sorted(every.unique())
    if _counts(every):
        advice = (f"They look like counts (plays, views, purchases: whole numbers, median "
                  f"{every.median():g}), not ratings: for implicit feedback give every row "
                  "the same rating, e.g. 1 (README: Your data)")
    elif len(values) == 2:  # 0/1, -1/1: thumbs down and up
        advice = (f"Two values ({values[0]:g} and {values[1]:g}) look like dislike and like: "
                  f"map them to 1 and {F.MAX_RATING:g}, either side of the like threshold (or, "
                  f"when {values[0]:g} only marks an item shown and not chosen, leave those "
                  "rows out)")
    elif low > F.MAX_RATING:  # all above: a larger scale, one factor maps it
        advice = ("Ratings on another scale (0-4, 1-10, 0-100) must be mapped to it first "
                  f"(rating x {F.MAX_RATING / high:.3g} maps {high:g} to {F.MAX_RATING:g})")
    else:
        advice = ("Ratings on another scale (0-4, 1-10, 0-100) must be mapped to it first, "
                  "and rows that only mark an interaction (0 = not rated) left out")
    return found + advice + "; --max-reject-fraction 1 trains on the rest instead"
