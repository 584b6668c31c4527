"""Why a refused served-path bound was refused, in words the run summary and report show.

A relative bound (contracts.metrics NDCG_LIFT, NDCG_CHANCE_LIFT) refuses a model that
is no better than its reference, but some eval splits cannot tell any model from it:

- every user rated nearly every item, so each user's unseen items are the held-out ones
  and any order scores the same NDCG@10 (1.000: model, popularity and random order
  alike, standard error 0);
- a whole-user holdout: no eval user has a training rating, so each is served the
  new-user prior, whatever the model learned, and scores what popularity scores;
- the reference already scores above 1 / (1 + bound): NDCG@10 is at most 1, so no
  model can lift it that far.

The gate still refuses (it is a gate), but says so and names the flag that pushes
anyway, instead of reading as "no better than chance". A shortfall smaller than two
standard errors over the eval users (a few dozen users) is noise, and the line says
that too. Pure functions of the RetrievalEvaluator's metrics and thresholds
(contracts.artifacts RETRIEVAL_METRICS_FILE), so a home from before these notes shows them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from mtrec.contracts.metrics import (
    CHANCE_PREFIX,
    EVAL_COLD_USERS,
    EVAL_USERS,
    NDCG,
    NDCG_CHANCE_LIFT,
    NDCG_LIFT,
    POPULARITY_PREFIX,
    RECOMMEND_K,
    STDERR_SUFFIX,
    at,
)

_NDCG = at(NDCG, RECOMMEND_K)
# A relative bound's reference: its metrics' prefix and its name in words.
REFERENCES = {NDCG_LIFT: (POPULARITY_PREFIX, "popularity"),
              NDCG_CHANCE_LIFT: (CHANCE_PREFIX, "a random order")}
_TIE = 1e-9  # per-user means of equal lists differ by a float's rounding at most
RETRIEVAL_FLAG = "--retrieval-thresholds"
NOISE_ERRORS = 2  # a shortfall under this many standard errors is noise (~95% interval)


def gate_value(value: float) -> str:
    """A gate's value to 3 places; a lift of 1.0 over 1.0 is 0.000, not -0.000."""
    return f"{round(value, 3) + 0.0:.3f}"


def _number(value: Any) -> float | None:
    """A finite float, or None (absent, NaN, a string MLMD held for inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _stderr(metrics: Mapping[str, Any], name: str) -> float | None:
    return _number(metrics.get(name + STDERR_SUFFIX))


def undecidable(metrics: Mapping[str, Any], name: str, bound: float) -> str | None:
    """Why this eval split cannot tell any model from relative bound `name`'s reference
    (see the module docstring), or None: it can, and the verdict is the model's."""
    if name not in REFERENCES:
        return None
    prefix, label = REFERENCES[name]
    model, reference = _number(metrics.get(_NDCG)), _number(metrics.get(prefix + _NDCG))
    if model is None or reference is None:
        return None
    chance = _number(metrics.get(CHANCE_PREFIX + _NDCG))
    popularity = _number(metrics.get(POPULARITY_PREFIX + _NDCG))
    error = _stderr(metrics, name)
    # No standard error (one eval user): equal means are that user's equal scores.
    alike = (error is None or error <= _TIE) and all(
        other is not None and abs(other - model) <= _TIE for other in (chance, popularity))
    if alike:
        return (f"every order of each eval user's unseen items scores the same NDCG@"
                f"{RECOMMEND_K} ({gate_value(model)}: the model, popularity and a random "
                "order alike), as when each user's unseen items are all held out")
    users, cold = metrics.get(EVAL_USERS), metrics.get(EVAL_COLD_USERS)
    if name == NDCG_LIFT and users and cold == users:
        return (f"none of the {users} eval users has a training rating (a whole-user "
                "holdout), so each is served the new-user prior, whatever the model "
                "learned, as popularity would serve them")
    if reference > 0 and reference * (1 + bound) > 1 + _TIE:
        return (f"{label}'s NDCG@{RECOMMEND_K} is already {gate_value(reference)}, and "
                f"NDCG@{RECOMMEND_K} is at most 1, so no model scores {bound:.0%} above "
                f"it (that needs {label} at most {1 / (1 + bound):.3f})")
    return None


def within_noise(metrics: Mapping[str, Any], name: str, value: float, bound: float) -> bool:
    """Whether a refused bound lies within NOISE_ERRORS standard errors (over the eval
    users) of the value: inside its ~95% interval, a verdict that another draw of as many
    users could reverse (20 users: lift 0.008, standard error 0.025, bound 0.05)."""
    error = _stderr(metrics, name)
    return error is not None and error > 0 and 0 < bound - value < NOISE_ERRORS * error


def push_anyway(thresholds: Mapping[str, float], names: list[str]) -> str:
    """The flag that runs again without the bounds `names` (it replaces the defaults, so
    it repeats the others): `--retrieval-thresholds '{...}'`."""
    kept = {name: bound for name, bound in sorted(thresholds.items()) if name not in names}
    return f"{RETRIEVAL_FLAG} '{json.dumps(kept)}'"


def _stderr_note(metrics: Mapping[str, Any], name: str, noise: bool) -> str:
    """A relative gate's standard error over the eval users, where the evaluator gave it."""
    error = _stderr(metrics, name)
    if error is None:
        return ""
    users = metrics.get(EVAL_USERS)
    return (f" (standard error {error:.3f}" + (f" over {users} eval users" if users else "")
            + (": within noise" if noise else "") + ")")


def failure_lines(metrics: Mapping[str, Any], failed: Mapping[str, Any],
                  thresholds: Mapping[str, float] | None) -> list[str]:
    """The summary's lines for a refused served-path gate: each failed bound with its
    value and standard error, then, where the eval split cannot tell models apart or the
    shortfall is noise, a line that says so and names the flag that pushes anyway."""
    if not failed:
        return []
    parts, blind, noisy = [], {}, []
    for name, (value, bound) in failed.items():
        reason = undecidable(metrics, name, bound)
        noise = reason is None and within_noise(metrics, name, value, bound)
        if reason:
            blind[name] = reason
        elif noise:
            noisy.append(name)
        parts.append(f"{name} {gate_value(value)} < {bound}{_stderr_note(metrics, name, noise)}")
    lines = ["retrieval gate failed: " + ", ".join(parts)]
    bounds = dict(thresholds or {})
    if blind:
        references = " or ".join(dict.fromkeys(REFERENCES[name][1] for name in blind))
        reasons = "; ".join(dict.fromkeys(blind.values()))
        lines.append(f"retrieval gate: the eval split cannot tell this model from "
                     f"{references}: {reasons}; to push anyway, "
                     f"{push_anyway(bounds, list(blind))}")
    if noisy:
        users = metrics.get(EVAL_USERS)
        lines.append(f"retrieval gate: {', '.join(noisy)} fell short by less than "
                     f"{NOISE_ERRORS} standard errors"
                     + (f" over {users} eval users" if users else "")
                     + ", so the verdict is within noise (more eval users would decide it); "
                     f"to push anyway, {push_anyway(bounds, noisy)}")
    return lines


def failure_tag(metrics: Mapping[str, Any], name: str, value: float, bound: float) -> str:
    """A refused bound's short qualifier for one-line reasons ("nothing pushed (...)")."""
    if undecidable(metrics, name, bound):
        return " (the eval split cannot tell models apart)"
    return " (within noise)" if within_noise(metrics, name, value, bound) else ""
