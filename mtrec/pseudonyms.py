"""Pseudonymous user ids: the one definition that ingestion writes into the data
(data/privacy.py) and that clients apply to ask for a user (the serving client,
`mtrec query`).

With a key, a user id becomes HMAC-SHA256(key, id) as hex, its first 16 characters:
keyed, so ids cannot be reversed by hashing a guessed id without the key;
deterministic, so the same user maps to the same pseudonym across runs, and a
client with the key asks the served model for the user it knows. Standard library
only: serving, which imports no data code, uses it too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

PSEUDONYM_CHARS = 16


def pseudonymizer(key: bytes) -> Callable[[object], str]:
    """A memoised id -> pseudonym function; an empty key is an error, never a no-op."""
    if not key:
        raise ValueError("pseudonymisation needs a non-empty key")
    cache: dict[str, str] = {}

    def pseudo(user: object) -> str:
        text = user.decode("utf-8") if isinstance(user, bytes) else str(user)
        if text not in cache:
            cache[text] = hmac.new(key, text.encode("utf-8"),
                                   hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]
        return cache[text]

    return pseudo


def key_from_env(variable: str, flag: str = "--pseudonymize-key-env") -> bytes:
    """The key held by environment variable `variable`; ValueError, naming `flag`, when
    it is not set or empty (the key is never taken from the command line, where other
    users of the machine can read it)."""
    key = os.environ.get(variable, "").encode()
    if not key:
        state = "is empty" if variable in os.environ else "is not set"
        raise ValueError(f"{flag}: env {variable} {state}")
    return key
