"""ModelConfig: the multi-task model's hyper-parameters, and the rules that settle them.

Kept apart from model.py so code that only reads or writes a configuration
(the Trainer's custom_config, the CLI, add-items' weights) needs no model code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from typing import TYPE_CHECKING

from mtrec.data.splits import RANDOM_PROTOCOL, TIME_PROTOCOL

if TYPE_CHECKING:  # the sizes come from Transform; no TensorFlow needed to read a config
    from mtrec.models.towers import VocabSizes

# The four tasks (one head each): the names `tasks`, `loss_weights` and `blend` use, the
# model's per-task losses and the pair heads' outputs.
RETRIEVAL, RELEVANCE, RATING, INTEREST = "retrieval", "relevance", "rating", "interest"
TASKS = (RETRIEVAL, RELEVANCE, RATING, INTEREST)
# Old task names configs may still carry (accepted with a FutureWarning; BUILD.md
# changelog): the relevance head was called "ranking" in tasks and loss_weights.
RENAMED_TASKS = {"ranking": "relevance"}
OPTIMIZERS = ("auto", "adam", "lazy_adam")
RESOLVED_OPTIMIZERS = OPTIMIZERS[1:]  # what a built model trains with ("auto" settled)
# Where "auto" switches to lazy_adam. Adam's whole-table step costs ~0.4 us per
# 128-wide id row (benchmarks/results/optimizer_step.md: 26 ms a step for two
# 30K-row tables; lazy_adam 2-4 ms at any size). At 10K users or items the
# user, item and history tables add ~13 ms to every step. ML-100K (1,682
# items) and ml-latest-small (9,742) stay on adam, where cold items do better.
LAZY_ADAM_MIN_ROWS = 10_000
# ModelConfig settings that follow from the split protocol (data/splits.py
# split_protocol), chosen on validation holdouts. On a random split the
# held-out ratings are spread over each user's timeline while a served query
# carries the user's *latest* items, so the recent-history feature points at
# the wrong time: ML-100K u1 validation HR@100 0.313 with it, 0.395 without
# (the same base otherwise; quality_tuning.md). On a
# time split it is the best feature (ml-latest-small validation HR@100 0.134
# without, 0.172 with). The pipeline's Trainer (from the split protocol its
# ExampleGen recorded: components/trainer/executor.py) and the benchmarks apply these;
# values the user sets win. light_user_items (models/light_users.py) is on for time
# splits only: their light users are new ones, and from their first 4 ratings
# recommend_from_items beats recommend (validation NDCG@10 0.575 vs 0.411); on
# ML-100K u1's random validation cut, users with at most 10 training ratings fell
# from 0.214 to 0.089 when served that way (quality_tuning.md, session 39).
PROTOCOL_OVERRIDES: dict[str, dict] = {
    RANDOM_PROTOCOL: {"history_dropout": 1.0},
    TIME_PROTOCOL: {"light_user_items": 5},
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters; everything here is settable from the Trainer's custom_config."""

    embedding_dim: int = 128
    l2: float = 1e-4  # on the id tables; with lazy_adam, on the rows a batch looks up
    dropout: float = 0.0
    mixture: str = "shared_bottom"  # or "mmoe"
    tasks: tuple[str, ...] = TASKS
    loss_weights: tuple[tuple[str, float], ...] = (
        (RETRIEVAL, 1.0),
        (RELEVANCE, 0.5),
        (RATING, 1.0),
        (INTEREST, 0.2),
    )
    uncertainty_weighting: bool = False
    # Retrieval score: "cosine" (unit vectors) or "dot" (raw; norms can carry popularity).
    similarity: str = "dot"
    temperature: float = 1.0  # retrieval softmax temperature (0.1 suits cosine)
    # Subtract log P(item in batch) from in-batch logits (sampling-bias correction).
    logq_correction: bool = True
    id_dropout: float = 0.05  # share of ids replaced by "unknown" (cold-start row)
    # An item whose id is dropped keeps its text vector (with a text encoder). Off,
    # the unknown id also blanked the text (the table's row 0 is zeros), so the
    # tower never saw what a cold item is served with: unknown id + real text.
    # ml-latest-small validation cut with its own cold draw (cold_item_validation.py,
    # MiniLM, one training each): NDCG@10 0.138 -> 0.148, P@10 0.113 -> 0.120,
    # cold HR@100 as served 0.110 -> 0.100 (without cold_item_term_weight).
    id_dropout_keeps_text: bool = True
    # Share of history positions blanked in training. The history of a training
    # row is the items just before it, but a served query sees the user's latest
    # items: blanking keeps the query from leaning on that local sequence, which
    # misleads on random (not time) splits. 1.0 = the query tower ignores history.
    history_dropout: float = 0.0
    # The query tower also reads every item the user rated in training, as an
    # unordered bag (towers.pooled_bag), the signal item-item models such as
    # EASE live on; without the target item in training. The dropout blanks
    # that share of each bag in training.
    rated_items: bool = True
    rated_dropout: float = 0.25
    # The re-ranker's item-item term (models/item_item.py): EASE's closed form on
    # the users' rated items, added to the retrieval similarity with this weight
    # (0 = off) after scaling it to the similarity's per-user spread. ML-100K u1
    # validation holdout NDCG@10 (recommend): 0.295 before the rated-item bag and
    # this term, 0.284 with the bag alone, 0.330 with both at weight 1 (EASE alone
    # 0.320; quality_tuning.md).
    # B is fitted on (1 - mix) X'X + mix x the session Gram, whose co-ratings are
    # weighted by exp(-|dt| / tau) (item_item.session_gram); mix 0 = X'X alone.
    # Dense B only (up to item_item.MAX_ITEMS known items). One training on the
    # same holdout, re-served per setting (serving_sweep.py): X'X at l2 500 and
    # weight 1 (the old defaults) 0.328, at weight 0.6-0.75 0.330-0.331; the
    # session blend (mix 0.5, tau 600 s, l2 300) 0.334 at weight 1, 0.338 at 0.5
    # (0.335-0.338 over mix 0.5-0.65, tau 300-1,200 s, l2 200-300, weight 0.4-0.75).
    item_item_weight: float = 0.5
    item_item_l2: float = 300.0
    item_item_session_mix: float = 0.5
    item_item_session_tau: float = 600.0  # seconds
    # The weight of item_item_term's rule for catalogue items without training
    # ratings (their own similarity's deviation, on the term's spread): a trade
    # between cold and warm items. ML-100K validation cut with its own cold draw
    # (cold_item_validation.py, one training, re-served), cold HR@100 as served /
    # NDCG@10 with the session term at weight 0.5: cold weight 0.5 0.353 / 0.322,
    # 0.75 0.438 / 0.312, 1: NDCG@10 0.286; the old term (X'X, weight 1 for both):
    # cold 0.377 (text_encoder_ml-100k_notes.md). 0.5 keeps the ratio the old term
    # had.
    item_item_cold_weight: float = 0.5
    # Above item_item.MAX_ITEMS known items the export keeps B's top-K weights per
    # item (models/sparse_item_item.py). ml-latest-small validation cut, EASE alone
    # (item_item_top_k.md): NDCG@10 0.1321 dense, 0.1293 at K 100 and 200, 0.1307
    # at 400 and 1000 (R@50 0.3018 / 0.2840 / 0.2985); 400 keeps 39% of |B|'s mass.
    # 0 (the default) = no item-item term above MAX_ITEMS: in the joint model on the
    # same validation cut, K 400 served NDCG@10 0.1356 against 0.1547 without the
    # term (coverage@10 0.075 vs 0.247; quality.py --holdout, ml-latest-small).
    item_item_top_k: int = 0
    # B is fitted on at most this many most-rated items: with more users than items
    # the inverse is direct: 1.6 GB peak measured at 7.1K items, ~3.1 GB at 10K.
    item_item_max_fit_items: int = 10_000
    # recommend_from_items only: a user known by a handful of items is served mostly by popularity
    # (ML-100K, 5 items given, before the onboarding prior: popularity NDCG@10 0.447, the query
    # alone 0.390; quality_tuning.md). This weight adds the log of each item's training popularity
    # (the logQ table) to the first stage, on its per-request spread like the item-item term; 0 =
    # off. Chosen on cold_users.py --validation (84 other held-out users): NDCG@10 0.440 at 0, 0.453
    # at 1, 0.508-0.512 at 6-12, 0.501 at 1000; popularity 0.492. With the session Gram term: 0.505
    # / 0.515 / 0.515 / 0.522 at 4 / 6 / 8 / 12 (8 kept: the middle of a flat top on 84 users;
    # quality_tuning.md).
    cold_popularity_weight: float = 8.0
    # recommend_from_items: what users went on to rate after their first
    # onboarding_items ratings, a ridge at onboarding_l2 from those items to the
    # later ones (models/onboarding.py), on stage 1's per-request spread like the
    # prior above, which it replaces where it is served (a table up to
    # onboarding.MAX_CELLS); 0 = off. cold_users.py --validation (cold_users_ml-100k_validation.md):
    # NDCG@10 0.518 off, 0.567 / 0.579 / 0.578 / 0.577 / 0.568 at weight
    # 1 / 2 / 3 / 4 / 8; l2 10 / 30 / 100: 0.570 / 0.578 / 0.577; onboarding_items
    # 3 / 5 / 10: 0.585 / 0.578 / 0.546. Weight 3 and l2 30: the middle of the flat top.
    onboarding_weight: float = 3.0
    onboarding_l2: float = 30.0
    onboarding_items: int = 5
    # recommend: a known user with at most this many rated training items gets
    # recommend_from_items' answer for those items (models/light_users.py); 0 = off.
    # Off here; time splits turn it on (PROTOCOL_OVERRIDES above).
    light_user_items: int = 0
    # Where no item-item term is served (item_item_top_k 0 above MAX_ITEMS), the
    # weight of its rule for items without training ratings alone
    # (item_item.cold_item_term). A trade: cold items gain what warm items lose (on
    # ml-latest-small's validation cut, cold HR@100 0.100 -> 0.159 as NDCG@10 fell
    # 0.148 -> 0.111 from 0 to 0.1). Off since the text map below (quality_tuning.md,
    # "Cold items").
    cold_item_term_weight: float = 0.0
    # Items without training ratings: their vector (unknown id + text) plus this
    # weight times a ridge map, at l2 cold_item_map_l2, from the text (and the
    # description's own vector) to what training added to the warm items' vectors
    # beyond their unknown-id ones (models/cold_item_map.py; 0 = off). Chosen on
    # ml-latest-small's two validation draws, first stage at equal NDCG@10, mean cold
    # HR@100: weight 0.5 0.144, 1 0.148, 2 0.139; per draw, l2 10 0.134 / 0.152,
    # l2 30 0.141 / 0.158 (cold_item_map_weights*.md, quality_tuning.md session 36).
    cold_item_map_weight: float = 1.0
    cold_item_map_l2: float = 30.0
    # Every served rating is (1 - w) * the rating head's + w * an item-kNN-with-
    # baselines prediction fitted at build time (models/neighbour_rating.py; 0 =
    # off), over each item's `rating_knn_neighbours` most similar rated items, the
    # similarity shrunk by n / (n + rating_knn_shrink); up to neighbour_rating.MAX_ITEMS
    # items. Validation RMSE, ML-100K u1 cut: 0.9014 without, 0.8851 at 0.4;
    # ml-latest-small's: 0.9354 without, 0.8535 at 0.4 (quality_tuning.md).
    rating_knn_weight: float = 0.4
    rating_knn_neighbours: int = 40
    rating_knn_shrink: float = 100.0
    # recommend's first stage on a catalogue of at least this many items (0 = never)
    # reads an IVF index (models/ivf.py): sqrt(N) k-means clusters, the ivf_nprobe
    # best scored exactly, instead of every item (1M x 128 floats = 512 MB a
    # request). Approximate (benchmarks/results/ivf_recall.json): at 1M items, 64
    # of 1,000 clusters score ~62K items, 26 ms in-process against 129 ms exact;
    # on the real 1,682 items, probing 20% of them keeps recall@10 0.996, 8% 0.91.
    # 100K items stay exact (serving.md's catalogue table). The dense item-item term (up to
    # item_item.MAX_ITEMS known items) takes precedence over the index; its top-K
    # form is left out where the index serves (its cold-item rule needs every
    # item's similarity, which the index avoids).
    ivf_min_items: int = 500_000
    ivf_nprobe: int = 64
    # recommend's answers for known users at k <= 25, stored at export
    # (models/answer_cache.py): users x 25 entries of 12 bytes; not built above
    # this many entries (2^22: 48 MB, 167K users). 0 = off.
    answer_cache_max_entries: int = 1 << 22
    # Final recommendation score = sum of weight * component (see serving_module.py).
    blend: tuple[tuple[str, float], ...] = (
        (RETRIEVAL, 1.0),
        (RELEVANCE, 0.5),
        (RATING, 0.5),
    )
    learning_rate: float = 0.003
    # "cosine" decays the rate to 5% over the run: the last epochs settle
    # instead of jumping around; "constant" keeps it.
    lr_schedule: str = "cosine"
    # "adam": Keras' Adam, whole-table l2; every step touches every id row, so
    # its cost grows with users and items. "lazy_adam": only the batch's rows
    # (models/optimizer.py), linear at scale, but on ML-100K cold items lost
    # (served cold HR@100 0.159 -> 0.130; quality_tuning.md). "auto": adam
    # below LAZY_ADAM_MIN_ROWS rows in every id table, lazy_adam from there.
    optimizer: str = "auto"
    batch_size: int = 1024
    epochs: int = 8

    @classmethod
    def from_dict(cls, values: dict | None) -> ModelConfig:
        values = dict(values or {})
        _check_types(values, {f.name: f.default for f in dataclasses.fields(cls)})
        if "tasks" in values:
            values["tasks"] = tuple(_current_task(t) for t in values["tasks"])
        if "loss_weights" in values:
            values["loss_weights"] = tuple(
                (_current_task(t), w) for t, w in values["loss_weights"]
            )
        known = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(values) - set(known))
        if unknown:  # a typo gets its near key; the rest the list (as --text-encoder's)
            near = [m for key in unknown for m in difflib.get_close_matches(key, known, 1)]
            raise ValueError(f"unknown model config keys: {unknown}"
                             + (f" (did you mean {', '.join(map(repr, near))}?)" if near else "")
                             + f"; known: {known}")
        config = cls(**values)
        for key, bounds in _RANGES.items():
            value = getattr(config, key)
            if not _within(value, *bounds):
                raise ValueError(f"model config {key!r} must be {_range_text(*bounds)}, "
                                 f"got {value!r}")
        for key in ("loss_weights", "blend"):
            negative = [(task, w) for task, w in getattr(config, key) if w < 0]
            if negative:
                raise ValueError(f"model config {key!r} weights must be >= 0, got {negative}")
        for key, allowed in (("similarity", ("cosine", "dot")), ("optimizer", OPTIMIZERS),
                             ("lr_schedule", ("constant", "cosine")),
                             ("mixture", ("shared_bottom", "mmoe"))):
            if getattr(config, key) not in allowed:
                raise ValueError(f"model config {key!r} must be one of {allowed}, "
                                 f"got {getattr(config, key)!r}")
        bad = set(config.tasks) - set(TASKS)
        if bad or not config.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {config.tasks}")
        return config

    def weight(self, task: str) -> float:
        return dict(self.loss_weights).get(task, 1.0)


INF = math.inf
# Each numeric field's valid range: (low, high, low included, high included). A value
# outside failed late or not at all: dropout 1.5 after a minute, in Keras' words
# ("Invalid value 1.5 received for `rate`"), never naming the key; temperature 0 or
# a negative l2 trained to NaN or to nothing.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "embedding_dim": (1, INF, True, False),
    "epochs": (1, INF, True, False),
    "batch_size": (1, INF, True, False),
    "learning_rate": (0, INF, False, False),
    "l2": (0, INF, True, False),
    "dropout": (0, 1, True, False),
    "temperature": (0, INF, False, False),
    "id_dropout": (0, 1, True, True),  # 1: every id unknown (the cold-item path alone)
    "history_dropout": (0, 1, True, True),  # 1: the query tower ignores history
    "rated_dropout": (0, 1, True, True),
    "item_item_weight": (0, INF, True, False),
    "item_item_l2": (0, INF, False, False),
    "item_item_session_mix": (0, 1, True, True),
    "item_item_session_tau": (0, INF, False, False),
    "item_item_cold_weight": (0, INF, True, False),
    "item_item_top_k": (0, INF, True, False),
    "item_item_max_fit_items": (1, INF, True, False),
    "cold_popularity_weight": (0, INF, True, False),
    "onboarding_weight": (0, INF, True, False),
    "onboarding_l2": (0, INF, False, False),
    "onboarding_items": (0, INF, True, False),
    "light_user_items": (0, INF, True, False),
    "cold_item_term_weight": (0, INF, True, False),
    "cold_item_map_weight": (0, 4, True, True),
    "cold_item_map_l2": (0, INF, False, False),
    "rating_knn_weight": (0, 1, True, True),
    "rating_knn_neighbours": (1, INF, True, False),
    "rating_knn_shrink": (0, INF, True, False),
    "ivf_min_items": (0, INF, True, False),
    "ivf_nprobe": (1, INF, True, False),
    "answer_cache_max_entries": (0, INF, True, False),
}


def _within(value: float, low: float, high: float, low_in: bool, high_in: bool) -> bool:
    return (low <= value if low_in else low < value) and (
        value <= high if high_in else value < high)


def _range_text(low: float, high: float, low_in: bool, high_in: bool) -> str:
    """">= 1", "> 0", "in [0, 1)"."""
    if high == INF:
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_types(values: dict, defaults: dict) -> None:
    """Each given value of its field's type, as JSON writes it (a list for a tuple, an
    object or a list of [name, weight] pairs for the weights, 8.0 for 8), made the
    field's type in place; ValueError names the key. A wrong type raised a
    TypeError from deep inside from_dict (`'<' not supported between 'str' and 'int'`)."""
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = _is_number(value) and float(value).is_integer(), "a whole number"
            if ok:
                values[key] = int(value)
        elif isinstance(default, float):
            ok, kind = _is_number(value), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        elif key == "tasks":
            ok = isinstance(value, list | tuple) and all(isinstance(t, str) for t in value)
            kind = "a list of task names"
            if ok:
                values[key] = tuple(value)
        elif isinstance(default, tuple):  # (name, weight) pairs
            pairs = list(value.items()) if isinstance(value, dict) else value
            ok = isinstance(pairs, list | tuple) and all(
                isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[0], str)
                and _is_number(p[1]) for p in pairs)
            kind = 'an object of weights, such as {"rating": 1.0}'
            if ok:  # an object's weights by name, a list's as given
                values[key] = tuple(sorted(pairs) if isinstance(value, dict)
                                    else (tuple(p) for p in pairs))
        else:
            continue  # unknown keys: from_dict names them
        if not ok:
            raise ValueError(f"model config {key!r} must be {kind}, got {value!r}")


def _current_task(name: str) -> str:
    """A task name, with an old one mapped to its current name (and a warning)."""
    if name in RENAMED_TASKS:
        warnings.warn(
            f"model task {name!r} is now called {RENAMED_TASKS[name]!r}; "
            "the old name will stop working in a later release",
            FutureWarning,
            stacklevel=3,
        )
        return RENAMED_TASKS[name]
    return name


def without_interest(overrides: dict) -> dict:
    """ModelConfig overrides with the interest task left out (data without genres: its
    labels would all be 0), unless they name the tasks themselves."""
    if "tasks" in overrides:
        return overrides
    return {**overrides, "tasks": [t for t in ModelConfig().tasks if t != INTEREST]}


def protocol_overrides(split_protocol: str | None) -> dict:
    """The ModelConfig overrides for a split protocol (none for an unknown one)."""
    return dict(PROTOCOL_OVERRIDES.get(split_protocol or "", {}))


def applied_protocol_settings(split_protocol: str | None, config: ModelConfig) -> dict:
    """The protocol's settings as `config` trained them: a --model-config value the user
    gave wins (the summary showed the protocol's default light_user_items 5 when 0 was
    trained)."""
    return {key: getattr(config, key) for key in protocol_overrides(split_protocol)}


def with_protocol_overrides(split_protocol: str | None, overrides: dict | None) -> dict:
    """ModelConfig overrides: the split protocol's, then `overrides` (the user's win)."""
    return {**protocol_overrides(split_protocol), **(overrides or {})}


def resolve_optimizer(config: ModelConfig, sizes: VocabSizes) -> ModelConfig:
    """Settle optimizer "auto" on the id-table sizes, which only Transform knows."""
    if config.optimizer != "auto":
        return config
    rows = max(sizes.users, sizes.items)
    return dataclasses.replace(
        config, optimizer="lazy_adam" if rows >= LAZY_ADAM_MIN_ROWS else "adam"
    )
