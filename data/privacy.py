"""Pseudonymous user ids, in the data and in the rejects.

With a key, every user id becomes its pseudonym (mtrec/pseudonyms.py: a keyed
HMAC, the same one clients apply to ask the served model for a user).

Rejects are data too: their user_id column gets the pseudonym, and every raw
user id that stands as a field in their raw text, detail or a timestamp that
is text is replaced by its pseudonym. A bad line can be garbled anywhere, so
the ids looked for are all the ids the input holds (ratings, users, and the
user id field of bad lines); an item id that equals some user id is replaced
as well. A bad ratings or users line whose user id field cannot be located at
all (too few fields) has its raw text withheld; its line number still points
to it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable

import pandas as pd

from mtrec.contracts import features as F
from mtrec.data.tables import DETAIL, MALFORMED, RATINGS, RAW_TEXT, REASON, TABLE, USERS, Dataset
from mtrec.pseudonyms import pseudonymizer

_DELIMITERS = "\\s,;:|\"'\\x00"  # what separates fields in the supported formats, and NUL
_FIELD = re.compile(f"[^{_DELIMITERS}]+")
WITHHELD = "(withheld: pseudonymised run, and the user id field of this line cannot be located)"


def pseudonymize_users(dataset: Dataset, key: bytes) -> Dataset:
    """Replace user ids by their pseudonyms in ratings and users."""
    pseudo = pseudonymizer(key)
    ratings = dataset.ratings.assign(**{F.USER_ID: dataset.ratings[F.USER_ID].map(pseudo)})
    users = dataset.users.assign(**{F.USER_ID: dataset.users[F.USER_ID].map(pseudo)})
    return dataclasses.replace(dataset, ratings=ratings, users=users)


def raw_user_ids(dataset: Dataset) -> set[str]:
    """Every user id the loaded (not yet cleaned) input holds, bad lines included."""
    ids = set(dataset.ratings[F.USER_ID].astype(str)) | set(dataset.users[F.USER_ID].astype(str))
    ids |= set(dataset.malformed[F.USER_ID].astype(str))
    return {i.strip() for i in ids if i.strip()}


def redact(
    text: str, known: set[str], pseudo: Callable[[object], str], odd: Iterable[str] = ()
) -> str:
    """Replace each known id standing as a field of `text` (between delimiters) by its pseudonym.

    `odd` are known ids that hold a delimiter themselves; they are looked for as such.
    """
    found = {f for f in _FIELD.findall(text) if f in known}
    found |= {i for i in odd if i in text or i.replace('"', '""') in text}  # csv doubles quotes
    if not found:
        return text
    forms = {form: user for user in found for form in (user, user.replace('"', '""'))}
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    pattern = f"(?<![^{_DELIMITERS}])(?:{alternatives})(?![^{_DELIMITERS}])"
    return re.sub(pattern, lambda m: pseudo(forms[m.group()]), text)


def pseudonymize_rejects(rejects: pd.DataFrame, key: bytes, known: set[str]) -> pd.DataFrame:
    """Rejects with pseudonyms for user ids: the user_id column, and in raw text and detail.

    `known`: the raw user ids to look for (see raw_user_ids); the rejects' own
    user ids are always looked for.
    """
    pseudo = pseudonymizer(key)
    users = rejects[F.USER_ID].fillna("").astype(str).str.strip()
    known = known | {u for u in users if u}
    odd = sorted(u for u in known if re.search(f"[{_DELIMITERS}]", u))
    out = rejects.copy()
    out[F.USER_ID] = [pseudo(u) if u else "" for u in users]
    for column in (RAW_TEXT, DETAIL):
        out[column] = [redact(str(t), known, pseudo, odd) for t in rejects[column].fillna("")]
    # A timestamp that is not a number is kept as its text, which could be anything.
    out[F.TIMESTAMP] = [redact(t, known, pseudo, odd) if isinstance(t, str) else t
                        for t in rejects[F.TIMESTAMP]]
    unlocated = ((rejects[REASON] == MALFORMED) & rejects[TABLE].isin([RATINGS, USERS])
                 & (users == "")).to_numpy()
    out.loc[unlocated, RAW_TEXT] = WITHHELD
    return out
