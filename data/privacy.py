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
import json
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
    """Replace user ids by their pseudonyms in ratings, users and tags."""
    pseudo = pseudonymizer(key)
    ratings = dataset.ratings.assign(**{F.USER_ID: dataset.ratings[F.USER_ID].map(pseudo)})
    users = dataset.users.assign(**{F.USER_ID: dataset.users[F.USER_ID].map(pseudo)})
    tags = dataset.tags
    if tags is not None:
        tags = tags.assign(**{F.USER_ID: tags[F.USER_ID].map(pseudo)})
    return dataclasses.replace(dataset, ratings=ratings, users=users, tags=tags)


def raw_user_ids(dataset: Dataset) -> set[str]:
    """Every user id the loaded (not yet cleaned) input holds, bad lines included."""
    ids = set(dataset.ratings[F.USER_ID].astype(str)) | set(dataset.users[F.USER_ID].astype(str))
    ids |= set(dataset.malformed[F.USER_ID].astype(str))
    return {i.strip() for i in ids if i.strip()}


def written_forms(user: str) -> set[str]:
    """How a raw line can hold `user`: as itself, with csv's doubled quotes, with JSON's
    escapes ("ted\\u00e905": json.dumps' default for "tedé05"), and, for a whole number,
    as the float ingestion reads as it (3003.0 in a JSON or Parquet float column). Those
    last two stayed readable in a pseudonymised run's rejects.csv."""
    forms = {user, user.replace('"', '""'), json.dumps(user)[1:-1]}
    if re.fullmatch(r"-?\d+", user):
        forms.add(f"{user}.0")
    return forms


def redact(
    text: str, known: set[str], pseudo: Callable[[object], str], odd: Iterable[str] = (),
    forms: dict[str, str] | None = None,
) -> str:
    """Replace each known id standing as a field of `text` (between delimiters), in any
    of its written_forms, by its pseudonym.

    `odd` are known ids that hold a delimiter themselves; they are looked for as such.
    `forms` (form -> id, from `forms_of(known)`) saves building it per text.
    """
    forms = forms_of(known) if forms is None else forms
    found = {forms[f] for f in _FIELD.findall(text) if f in forms}
    found |= {i for i in odd if any(f in text for f in written_forms(i))}
    if not found:
        return text
    wanted = forms_of(found)
    alternatives = "|".join(re.escape(f) for f in sorted(wanted, key=len, reverse=True))
    pattern = f"(?<![^{_DELIMITERS}])(?:{alternatives})(?![^{_DELIMITERS}])"
    return re.sub(pattern, lambda m: pseudo(wanted[m.group()]), text)


def forms_of(known: set[str]) -> dict[str, str]:
    """Each written form of each known id -> the id."""
    return {form: user for user in known for form in written_forms(user)}


def pseudonymize_rejects(rejects: pd.DataFrame, key: bytes, known: set[str],
                         own_words: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Rejects with pseudonyms for user ids: the user_id column, and in raw text and detail.

    `known`: the raw user ids to look for (see raw_user_ids); the rejects' own
    user ids are always looked for. `own_words`: the reasons whose detail is mtrec's
    own words, no input (cleaning.DATA_FREE_DETAILS): their detail is left as it is;
    with MovieLens' numeric user ids every number in it (a line number) was replaced.
    """
    pseudo = pseudonymizer(key)
    users = rejects[F.USER_ID].fillna("").astype(str).str.strip()
    known = known | {u for u in users if u}
    odd = sorted(u for u in known if re.search(f"[{_DELIMITERS}]", u))
    forms = forms_of(known)
    out = rejects.copy()
    out[F.USER_ID] = [pseudo(u) if u else "" for u in users]
    out[RAW_TEXT] = [redact(str(t), known, pseudo, odd, forms)
                     for t in rejects[RAW_TEXT].fillna("")]
    out[DETAIL] = [str(t) if why in own_words else redact(str(t), known, pseudo, odd, forms)
                   for t, why in zip(rejects[DETAIL].fillna(""), rejects[REASON], strict=True)]
    # An item id, rating or timestamp that is not what it should be is kept as its text,
    # which could be anything: a user id in swapped columns (the item_id column kept it).
    for column in (F.ITEM_ID, F.RATING, F.TIMESTAMP):
        out[column] = [redact(t, known, pseudo, odd, forms) if isinstance(t, str) else t
                       for t in rejects[column]]
    unlocated = ((rejects[REASON] == MALFORMED) & rejects[TABLE].isin([RATINGS, USERS])
                 & (users == "")).to_numpy()
    out.loc[unlocated, RAW_TEXT] = WITHHELD
    return out
