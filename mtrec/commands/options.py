"""Flags that `mtrec run` and `mtrec compile` share, in one style (`--dashed-names`).

Both commands turn them into the same PipelineSettings fields (model,
text_encoder, thresholds, enable_cache), so a local run and a compiled
Kubeflow/Vertex spec read a flag the same way. Defaults are not repeated here:
an unset flag leaves the PipelineSettings / Thresholds default in place.
Thresholds load TensorFlow (settings validate the model config), so they are
imported when flags are turned into settings, not when parsers are built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from typing import TYPE_CHECKING, Any, TypeAlias

from mtrec.contracts.artifacts import MLMD_FILE
from mtrec.contracts.metrics import (
    HIT_RATE,
    RANKING_METRICS,
    RETRIEVAL_KS,
    at,
    threshold_names,
)
from mtrec.pipeline.configs import PATTERN_CHARACTERS
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.pipeline.killed_runs import holds_files
from mtrec.pipeline.mlmd_store import store_problem

if TYPE_CHECKING:  # imported when flags become settings, not when parsers are built
    from mtrec.pipeline.settings import Thresholds

EXAMPLE_HELP = argparse.RawDescriptionHelpFormatter
# What ArgumentParser.add_subparsers returns, each sub-command's parser is added to it
# (argparse names its class privately; typeshed types it so).
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object (a clear error for anything else)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def fraction(text: str) -> float:
    """argparse type: a share from 0 to 1 (`--max-reject-fraction`)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value}: a fraction is from 0 to 1")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a share strictly between 0 and 1 (`--eval-fraction`: both sides of
    the split need rows)."""
    value = _number(text)
    if not 0.0 < value < 1.0:  # 1.5 was told "a fraction is from 0 to 1", and 1 refused
        raise argparse.ArgumentTypeError(f"{value}: must be above 0 and below 1")
    return value


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Model, text-encoder, blessing and cache flags."""
    model = parser.add_argument_group("model (models/config.py ModelConfig)")
    model.add_argument("--model-config", type=json_object, default={},
                       help="JSON ModelConfig overrides, e.g. '{\"embedding_dim\": 32}'")
    model.add_argument("--epochs", type=int, help="training epochs (ModelConfig.epochs)")
    text = parser.add_argument_group("text encoder (components/text_encoder/config.py)")
    text.add_argument("--text-encoder", type=json_object, default={},
                      help="JSON TextEncoderConfig overrides, e.g. "
                           "'{\"mode\": \"pretrained_mlm\", \"fine_tune_steps\": 300}'")
    text.add_argument("--no-text-encoder", action="store_true",
                      help="leave the language-model item representation out")
    bless = parser.add_argument_group(
        "blessing thresholds (defaults: pipeline/configs.py)")
    bless.add_argument("--rating-rmse-max", type=float, help="TFMA: rating RMSE upper bound")
    bless.add_argument("--rating-rmse-max-increase", type=float,
                       help="TFMA: largest RMSE increase over the last pushed model")
    bless.add_argument("--relevance-auc-min", type=float,
                       help="TFMA: relevance (P(like)) AUC lower bound")
    bless.add_argument("--relevance-auc-max-decrease", type=float,
                       help="TFMA: largest AUC decrease below the last pushed model")
    bless.add_argument("--retrieval-thresholds", type=json_object,
                       help="RetrievalEvaluator bounds, replacing the defaults, e.g. "
                       "'{\"hit_rate@100\": 0.05, \"ndcg@10_lift\": 0.05}'")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")


def thresholds(args: argparse.Namespace) -> Thresholds:
    """The Thresholds the flags ask for; unset flags keep Thresholds' defaults."""
    from mtrec.pipeline.settings import Thresholds

    given = {
        "rating_rmse_max": args.rating_rmse_max,
        "rating_rmse_max_increase": args.rating_rmse_max_increase,
        "relevance_auc_min": args.relevance_auc_min,
        "relevance_auc_max_decrease": args.relevance_auc_max_decrease,
        "retrieval": args.retrieval_thresholds,
    }
    return Thresholds(**{k: v for k, v in given.items() if v is not None})


def model_overrides(args: argparse.Namespace, model: dict[str, Any]) -> dict[str, Any]:
    """The ModelConfig overrides (`--model-config` plus `--epochs`), validated: a bad
    value raises ValueError here, in a second, before ingestion or TensorFlow."""
    from mtrec.models.config import ModelConfig  # TF-free, but not needed for --help

    if args.epochs is not None:
        model = {**model, "epochs": args.epochs}
    ModelConfig.from_dict(dict(model))
    return model


def check_flags(args: argparse.Namespace) -> None:
    """Every pipeline flag `mtrec run` would otherwise only check when it defines the
    pipeline, after ingestion (and `mtrec compile` never: a bound no model can meet
    compiles): ValueError here, in a second, without TensorFlow."""
    from mtrec.components.text_encoder.config import TextEncoderConfig  # as ModelConfig

    model_overrides(args, dict(args.model_config))
    if not args.no_text_encoder:
        unknown = TextEncoderConfig.unknown(args.text_encoder)
        if unknown:
            known = [f.name for f in dataclasses.fields(TextEncoderConfig)]
            raise ValueError(f"--text-encoder: unknown settings {unknown}; known: {sorted(known)}")
        try:
            TextEncoderConfig.from_exec_properties(dict(args.text_encoder))
        except (TypeError, ValueError) as err:
            raise ValueError(f"--text-encoder: {err}") from None
    # nan compares false with every metric (no model blessed) and inf bounds nothing.
    for flag, value in (("--rating-rmse-max", args.rating_rmse_max),
                        ("--rating-rmse-max-increase", args.rating_rmse_max_increase),
                        ("--relevance-auc-min", args.relevance_auc_min),
                        ("--relevance-auc-max-decrease", args.relevance_auc_max_decrease)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flag}: a bound is a finite number, got {value}")
    # A bound no model can meet (an AUC of 60 meant as 0.60) fails only after training.
    auc = args.relevance_auc_min
    if auc is not None and not 0.0 <= auc <= 1.0:
        raise ValueError(f"--relevance-auc-min: an AUC lies in [0, 1], got {auc}: no model "
                         "could be blessed")
    # A change bound is a size; "-0.01" meant as "a drop of 0.01" would instead demand
    # that every new model beat the pushed one by 0.01.
    for flag, bound in (("--rating-rmse-max-increase", args.rating_rmse_max_increase),
                        ("--relevance-auc-max-decrease", args.relevance_auc_max_decrease)):
        if bound is not None and bound < 0:
            raise ValueError(f"{flag}: a change bound is a size (>= 0), got {bound}: a "
                             "negative one would refuse every model that does not beat "
                             "the pushed one by that much")
    if args.rating_rmse_max is not None and args.rating_rmse_max <= 0:
        raise ValueError(f"--rating-rmse-max: an RMSE bound must be above 0, got "
                         f"{args.rating_rmse_max}: no model could be blessed")
    bad = sorted(set(args.retrieval_thresholds or {}) - threshold_names())
    if bad:
        raise ValueError(f"--retrieval-thresholds: unknown metric(s) {bad}; known: "
                         f"{sorted(threshold_names())}")
    # A bound that is not a number ("0.1" in quotes) compiled, and failed `mtrec run`
    # with a TypeError after training.
    odd = {m: b for m, b in (args.retrieval_thresholds or {}).items()
           if isinstance(b, bool) or not isinstance(b, int | float)}
    if odd:
        raise ValueError(f"--retrieval-thresholds: a bound is a number, got {odd}")
    check_retrieval_bounds(args.retrieval_thresholds or {})


def check_retrieval_bounds(bounds: dict[str, float]) -> None:
    """The RetrievalEvaluator's bounds, each a lower bound on its metric (its names and
    number types checked before): ValueError for one no model can meet, or a sign
    mistake. JSON reads NaN and Infinity as numbers."""
    rates = {at(HIT_RATE, k) for k in RETRIEVAL_KS} | set(RANKING_METRICS)
    for metric, bound in sorted(bounds.items()):
        if not math.isfinite(bound):
            raise ValueError(f"--retrieval-thresholds: {metric}'s bound is a finite number, "
                             f"got {bound}")
        if metric in rates and bound > 1:
            raise ValueError(f"--retrieval-thresholds: {metric} lies in [0, 1], got a bound "
                             f"of {bound}: no model could be blessed")
        # As the TFMA change bounds above: "0.01" meant as "a drop of at most 0.01".
        if metric.endswith("_change") and bound > 0:
            raise ValueError(f"--retrieval-thresholds: {metric} is a lower bound on the new "
                             f"model's score minus the pushed model's, so a drop of at most "
                             f"{bound} is {-bound}; {bound} would refuse every model that "
                             f"does not beat the pushed one by that much")


def pipeline_notes(args: argparse.Namespace) -> list[str]:
    """Notes (not errors) for shared flags that this combination leaves without effect."""
    if args.no_text_encoder and args.text_encoder:
        return ["--text-encoder ignored: --no-text-encoder leaves the text encoder out"]
    return []


def pipeline_fields(args: argparse.Namespace, model: dict[str, Any]) -> dict[str, Any]:
    """PipelineSettings fields from the shared flags; `model` is the ModelConfig overrides."""
    return {
        "model": model_overrides(args, model),
        "text_encoder": None if args.no_text_encoder else dict(args.text_encoder),
        "thresholds": thresholds(args),
        "enable_cache": not args.no_cache,
    }


def run_home_problem(home: str) -> str | None:
    """Why `home` is not an `mtrec run` output folder, or None: checked before a
    command imports TensorFlow (~10 s), so a mistyped path fails in a second."""
    if not os.path.exists(home):
        return f"{home}: no such folder"
    if not os.path.isdir(home):
        return f"{home}: is a file, not an `mtrec run` output folder"
    store = os.path.join(home, MLMD_FILE)
    if not os.path.isfile(store):
        return (f"{home}: no {MLMD_FILE}, so not an `mtrec run` output folder "
                f"(`mtrec run --home {home}` makes one)")
    return store_problem(store)


def home_problem(home: str) -> str | None:
    """Why `home` cannot be a new run's home, in words for an `error:` line; None when
    it can (run_home_problem above asks for an existing one)."""
    if os.path.exists(home) and not os.path.isdir(home):  # else a traceback from ingestion
        return (f"--home {home} is a file: the run's output folder must be a folder "
                "(a new path makes one)")
    found = sorted({c for c in os.path.abspath(home) if c in PATTERN_CHARACTERS})
    if found:
        return (f"--home {os.path.abspath(home)} holds {' '.join(found)}, which Beam and TFX "
                "read as file-pattern characters in the paths of their own files: give a "
                "home whose path has none")
    store = os.path.join(home, MLMD_FILE)  # an empty one is a new home's: the run fills it
    if os.path.isfile(store) and os.path.getsize(store):
        return store_problem(store)  # refused now, not after ingestion (mlmd_store.py)
    return lost_store_problem(home)


def lost_store_problem(home: str) -> str | None:
    """Why a home whose runs' artifacts outlived their ML Metadata store cannot run.

    A new store numbers executions from 1 again, and TFX writes each execution's outputs
    to `<node>/<key>/<execution id>/`: a run in a home whose metadata.sqlite was
    removed by hand failed with "AlreadyExistsError: file already exists" (no path),
    overwrote earlier runs' examples in place, and its retry pushed a version beside
    the served one without comparing against it; `mtrec prune` could no longer see
    the older runs' files (a user's probe, 2026-12-07)."""
    root = LocalPaths(home).pipeline_root
    if not holds_files(root):
        return None
    return (f"{os.path.abspath(home)} holds earlier runs' artifacts "
            f"({os.path.basename(root)}/) "
            f"but no {MLMD_FILE} with their record: a run would number its executions "
            "from 1 again and write over those artifacts. Put the home's "
            f"{MLMD_FILE} back, or give a new --home (and delete this one if its runs "
            "are no longer needed)")
