"""What a CSV header that cannot be read gets: a HeaderError, and hints that name
the likely fix (a file without a header row, another separator, column names in
other case or under the names exports give them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mtrec.contracts import features as F


class HeaderError(ValueError):
    """A CSV header the file cannot be read with. Its first line may be data (no
    header row at all), so `withheld` says the same without the line's values."""

    def __init__(self, path: Path, header: list[str], problem: str) -> None:
        super().__init__(f"{path}: header {header} {problem}")
        self.path, self.header, self.problem = path, header, problem

    def withheld(self) -> str:
        return (f"{self.path}: the header (line 1, {len(self.header)} fields; values withheld: "
                f"pseudonymised run) {self.problem}")


def headerless_hint(header: list[str], required: Iterable[str]) -> str:
    """A hint when the first line holds numbers and no column name: data, as u.data
    converted to CSV has, not a header."""
    numbers = pd.to_numeric(pd.Series(header, dtype=object), errors="coerce").notna()
    if not numbers.any() or {_snake(h) for h in header} & set(required):
        return ""
    return (f" (the first line looks like data: the file needs a header row, such as "
            f"{','.join(required)})")


def separator_hint(header: list[str]) -> str:
    """A hint when a one-column header looks separated by something other than commas."""
    if len(header) != 1:
        return ""
    for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep in header[0]:
            return f" (it looks {name}-separated: the CSV files must be comma-separated)"
    return ""


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # userId -> user_Id
# What exports call the required columns (the words before an "id": customer_id,
# reviewerID, asin): a header of them was refused with the required names only.
_OTHER_NAMES = {
    F.USER_ID: frozenset({"user", "uid", "customer", "member", "visitor", "account", "client",
                          "reviewer", "viewer", "listener", "reader", "buyer", "person"}),
    F.ITEM_ID: frozenset({"item", "iid", "movie", "film", "product", "asin", "sku", "book",
                          "isbn", "track", "song", "artist", "article", "content", "video",
                          "show", "game", "recipe", "business"}),
    F.RATING: frozenset({"stars", "star", "score", "overall", "rate", "rated", "grade",
                         "review_score", "vote"}),
}


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name.strip()).lower().replace(" ", "_")


def column_hint(header: Iterable[str], missing: list[str]) -> str:
    """A hint when a missing column is in the header in other case, with spaces or in
    camelCase ("User_ID", "Item ID", "userId"), or under a name exports give it
    ("customer_id", "asin", "stars"); every missing column gets its hint (a header
    `userId,movieId` named the first only, so a fixed file failed on the second)."""
    near = {}
    for h in map(str, header):
        near[_snake(h)] = h
        near[h.strip().lower().replace(" ", "_")] = h
    found = [f"{near[c]!r} -> {c!r}" for c in missing if c in near]
    named = []
    for column in (c for c in missing if c not in near):
        words = _OTHER_NAMES.get(column, frozenset())
        for h in map(str, header):
            name = _snake(h)
            if name in words or re.sub(r"_?id$", "", name) in words:
                named.append(f"{h!r} -> {column!r}")
                break
    hints = ([f"column names are lower-case, as listed: {', '.join(found)}"] if found else []
             ) + ([f"if these are them, rename: {', '.join(named)}"] if named else [])
    return f" ({'; '.join(hints)})" if hints else ""
