"""Aggregation, tables and target verdicts of benchmarks/quality.py (issue 14 §1, §3).

A payload (the results JSON) holds, per fold, per variant, every run's metrics
(one per seed) and their mean / std / min / max; `summary` holds, per variant,
the mean and std over folds of the per-fold seed means.
"""

from __future__ import annotations

import json
import math

import numpy as np

# (metric key, column label): the headline protocol first.
HEADLINE = (
    ("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10"),
    ("recall@50", "R@50"), ("hit_rate@10", "HR@10"), ("hit_rate@50", "HR@50"),
    ("hit_rate@100", "HR@100"), ("rmse", "RMSE"), ("mae", "MAE"),
    ("coverage@10", "cov@10"), ("novelty@10", "nov@10"), ("train_seconds", "train s"),
)  # fmt: skip
EXTRA = (
    ("retrieval_ndcg@10", "NDCG@10 retr."), ("score_ndcg@10", "NDCG@10 score"),
    ("interest_auc", "interest AUC"),
)  # fmt: skip
SEED_METRICS = (("ndcg@10", "NDCG@10"), ("recall@50", "R@50"), ("rmse", "RMSE"),
                ("hit_rate@100", "HR@100"))  # fmt: skip
# Issue 14 §3 (ML-100K, fold means of one joint model per fold).
TARGET_FOLDS = ("u1", "u2", "u3", "u4", "u5")
NDCG_MARGIN = 0.02
RMSE_TARGET = 0.885
ANCHORS = {
    "popularity on u1 (measured reference)": "HR@100 0.290, HR@10 0.045, NDCG@10 0.325; "
    "item-mean RMSE 1.033",
    "TFRS tutorial joint model (its own random split)": "HR@100 0.235, RMSE 1.110",
    "SVD++ (u1)": "RMSE 0.919",
    "GLocal-K (u1, best published, best epoch on test)": "RMSE 0.889",
    "IGMC / GC-MC (u1)": "RMSE 0.905 / 0.910",
}


# ------------------------------------------------------------------ aggregation
def aggregate(runs: list[dict]) -> dict:
    """mean / std / min / max over runs of every numeric metric (std 0 for one run)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and k != "seed"]
    out: dict = {"n": len(runs), "mean": {}, "std": {}, "min": {}, "max": {}}
    for key in keys:
        values = np.array([r[key] for r in runs if r.get(key) is not None], np.float64)
        if not len(values):
            continue
        out["mean"][key] = float(values.mean())
        out["std"][key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out["min"][key], out["max"][key] = float(values.min()), float(values.max())
    return out


def summarize(folds: dict[str, dict]) -> dict[str, dict]:
    """Per variant: mean and std over folds of the per-fold seed means."""
    variants: list[str] = []
    for results in folds.values():
        variants += [v for v in results["results"] if v not in variants]
    summary: dict[str, dict] = {}
    for variant in variants:
        means = [f["results"][variant]["mean"] for f in folds.values() if variant in f["results"]]
        summary[variant] = aggregate(means)
    return summary


def seed_spread(payload: dict, variant: str, metric: str) -> float | None:
    """Largest max - min of `metric` over seeds on any fold with several seeds."""
    spreads = []
    for fold in payload["folds"].values():
        runs = fold["results"].get(variant)
        if runs and runs["n"] > 1 and metric in runs["max"]:
            spreads.append(runs["max"][metric] - runs["min"][metric])
    return max(spreads) if spreads else None


# ------------------------------------------------------------------ tables
def _cell(value: float | None, key: str, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    fmt = "{:.0f}" if key == "train_seconds" else "{:.3f}"
    text = fmt.format(value)
    if std is not None:
        text += " ± " + fmt.format(std)
    return text


def table(rows: dict[str, dict], columns: tuple, with_std: bool = False) -> str:
    """rows: variant -> {"mean": {...}, "std": {...}}."""
    out = [
        "| variant | " + " | ".join(label for _, label in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, agg in rows.items():
        cells = [
            _cell(agg["mean"].get(key), key, agg["std"].get(key) if with_std else None)
            for key, _ in columns
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def seed_table(results: dict[str, dict]) -> str:
    """mean ± std (min–max) over seeds, for the variants run with several seeds."""
    rows = {v: r for v, r in results.items() if r["n"] > 1}
    if not rows:
        return ""
    out = ["| variant | seeds | " + " | ".join(label for _, label in SEED_METRICS) + " |",
           "|---|---:|" + "---:|" * len(SEED_METRICS)]
    for name, agg in rows.items():
        cells = []
        for key, _ in SEED_METRICS:
            if key not in agg["mean"]:
                cells.append("–")
                continue
            cells.append(f"{agg['mean'][key]:.3f} ± {agg['std'][key]:.3f} "
                         f"({agg['min'][key]:.3f}–{agg['max'][key]:.3f})")
        out.append(f"| {name} | {agg['n']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------ verdicts
def _mean(payload: dict, variant: str, metric: str) -> float | None:
    return payload["summary"].get(variant, {}).get("mean", {}).get(metric)


def _bound(label: str, value: float, bound: float, higher: bool) -> str:
    met = value >= bound if higher else value <= bound
    sign = ">=" if higher else "<="
    # Four decimals where three would print a miss as "0.885 <= 0.885".
    digits = 3 if round(value, 3) != round(bound, 3) else 4
    verdict = "met" if met else f"missed by {abs(value - bound):.{digits}f}"
    return f"- {label}: {value:.{digits}f} {sign} {bound:.{digits}f}: {verdict}"


def target_verdicts(payload: dict) -> list[str]:
    """Issue 14 §3, on the fold means (ML-100K) or the one split (other datasets)."""
    joint_ndcg, ease_ndcg = _mean(payload, "joint", "ndcg@10"), _mean(payload, "ease", "ndcg@10")
    if joint_ndcg is None or ease_ndcg is None:
        return ["- (joint or ease not run: no verdicts)"]
    if payload["setup"]["dataset"] != "ml-100k":
        return [_bound("joint NDCG@10 vs EASE", joint_ndcg, ease_ndcg, True)]
    folds = list(payload["folds"])
    # The targets are set on the mean over all five folds: fewer folds give a
    # reading of them, not a verdict on them.
    scope = "fold mean" if len(folds) >= len(TARGET_FOLDS) else f"{', '.join(folds)} only"
    lines = [_bound(f"NDCG@10 {scope} vs EASE + {NDCG_MARGIN}", joint_ndcg,
                    ease_ndcg + NDCG_MARGIN, True)]
    gaps = {
        fold: f["results"]["joint"]["mean"]["ndcg@10"] - f["results"]["ease"]["mean"]["ndcg@10"]
        for fold, f in payload["folds"].items()
        if "joint" in f["results"] and "ease" in f["results"]
    }
    behind = {fold: gap for fold, gap in gaps.items() if gap < 0}
    gap_text = ", ".join(f"{fold} {gap:+.3f}" for fold, gap in gaps.items())
    lines.append(
        f"- NDCG@10 >= EASE on every fold (joint - EASE: {gap_text}): "
        + ("met" if not behind else f"missed by {-min(behind.values()):.3f} "
           f"(on {', '.join(behind)})")
    )
    joint_r50, ease_r50 = _mean(payload, "joint", "recall@50"), _mean(payload, "ease", "recall@50")
    if joint_r50 is not None and ease_r50 is not None:
        lines.append(_bound(f"R@50 {scope} vs EASE", joint_r50, ease_r50, True))
    joint_rmse = _mean(payload, "joint", "rmse")
    if joint_rmse is not None:
        lines.append(_bound(f"RMSE {scope}", joint_rmse, RMSE_TARGET, False))
    if len(folds) < len(TARGET_FOLDS):
        lines.append(f"- ({len(folds)} of {len(TARGET_FOLDS)} folds: the targets are judged on "
                     "the 5-fold mean, quality_ml-100k_folds.md)")
    return lines


def multitask_verdicts(payload: dict) -> list[str]:
    """Joint vs each single-task variant on that variant's own metric, by more than the
    seed spread (the larger max - min over seeds of the two variants)."""
    lines = []
    checks = (("retrieval_only", "ndcg@10", True), ("ranking_only", "ndcg@10", True),
              ("rating_only", "rmse", False))  # fmt: skip
    for single, metric, higher in checks:
        joint, other = _mean(payload, "joint", metric), _mean(payload, single, metric)
        if joint is None or other is None:
            continue
        note, single_metric = "", metric
        if single == "ranking_only":
            # Its `recommend` retrieves candidates with towers never trained to retrieve;
            # compare against the better of that and ranking the catalogue with `score`.
            scored = _mean(payload, single, "score_ndcg@10")
            if scored is not None and scored > other:
                other, note = scored, " (ranking-only's `score` ranking of the catalogue)"
                single_metric = "score_ndcg@10"
        spreads = [
            seed_spread(payload, "joint", metric), seed_spread(payload, single, single_metric)
        ]
        known = [s for s in spreads if s is not None]
        spread = max(known) if known else 0.0
        lead = (joint - other) if higher else (other - joint)
        verdict = "met" if lead > spread else f"missed by {spread - lead:.3f}"
        spread_text = f"{spread:.3f}" if known else "unknown (one seed), taken as 0"
        lines.append(
            f"- {metric.upper()}: joint {joint:.4f} vs {single} {other:.4f}{note} "
            f"({'higher' if higher else 'lower'} is better; lead {lead:+.4f}, seed spread "
            f"{spread_text}): {verdict}"
        )
    if not lines:  # a fold run of the headline variants only (the variants run on u1)
        lines.append("- no single-task variant in this run: quality_ml-100k_u1.md "
                     "compares them on ML-100K's u1")
    return lines


# ------------------------------------------------------------------ markdown
DEFINITIONS = (
    "P/R/NDCG@10 and R@50, as served: per test user, top 50 of `recommend` (training items "
    "excluded; baselines: their scores with training items excluded); relevance = every "
    "held-out item (binary); NDCG's ideal DCG over min(|relevant|, 10); averaged over users "
    "with a held-out item. HR@K: per held-out interaction, is the item in the user's top K "
    "of `retrieve` over the whole catalogue, seen items kept (TFRS FactorizedTopK semantics, "
    "for comparison with the tutorial; not a target). RMSE/MAE: `score(user_id, item_ids)` "
    "per held-out rating (the user's latest profile, as served; popularity: item mean). "
    "'NDCG@10 retr.': plain `retrieve` order, seen excluded; 'NDCG@10 score': the whole "
    "catalogue ranked by `score`'s relevance output (ranking-only). Coverage: distinct "
    "recommended items / training catalogue; novelty: mean -log2(share of training users "
    "who rated the item). Interest AUC: per user, genres of held-out liked items vs "
    "`user_interest`. train s: training seconds on this host."
)


# setup key: which rows an older version of the code measured (quality.py --note)
CODE_NOTE = "code_note"


def _ease_text(setup: dict) -> str:
    lam, found = setup.get("ease_lambda"), setup.get("ease_validation")
    if lam is None:
        return "EASE not run"
    if not found:
        return f"EASE λ {lam:g} (fixed)"
    tried = ", ".join(f"{k}: {v:.3f}" for k, v in found.items())
    return f"EASE λ {lam:g}, best validation NDCG@10 of λ = {tried}"


def markdown(payload: dict) -> str:
    setup, folds = payload["setup"], payload["folds"]
    names = list(folds)
    out = [f"# Recommendation quality: {setup['dataset']}, {', '.join(names)}", ""]
    for name, fold in folds.items():
        s = fold["setup"]
        out.append(
            f"- {name}: {s['train_rows']:,} training / {s['eval_rows']:,} held-out ratings; "
            f"catalogue {s['catalog']:,} training items; {s['test_users']:,} test users; "
            f"split rule: {s['split_rule']}; {_ease_text(s)}."
        )
    out += ["", f"Host: {setup['host']}. Seeds: {setup['seeds']}.", ""]
    if setup.get(CODE_NOTE):  # rows measured by code that is no longer the default
        out += [f"**Code note:** {setup[CODE_NOTE]}", ""]
    if len(folds) > 1:
        out += [f"## Mean ± std over {len(folds)} folds (each fold: mean over its seeds)", "",
                table(payload["summary"], HEADLINE, with_std=True), ""]
    out += ["## Targets (issue 14 §3)", "", *target_verdicts(payload), "",
            "Joint vs single-task (same config, one task; fold means):", "",
            *multitask_verdicts(payload), ""]
    for name, fold in folds.items():
        seeds = seed_table(fold["results"])
        out += [f"## {name}", "", table(fold["results"], HEADLINE + EXTRA), ""]
        if seeds:
            out += [f"Seeds on {name}: mean ± std (min–max)", "", seeds, ""]
    out += [
        DEFINITIONS, "",
        f"Seeds: {setup.get('seed_note', '')}", "",
        f"Our model's config: `{json.dumps(payload['config'])}`", "",
        f"Set for this split's protocol ({payload.get('split_protocol', '?')}): "
        f"`{json.dumps(payload.get('protocol_overrides', {}))}`, as the pipeline's Trainer sets it "
        "(models/config.py PROTOCOL_OVERRIDES).", "",
        "Anchors (other protocols unless noted):", "",
        *[f"- {k}: {v}" for k, v in payload.get("anchors", ANCHORS).items()], "",
    ]  # fmt: skip
    return "\n".join(out)


def merged(payload: dict, more: dict, seeded: tuple[str, ...], drop: tuple[str, ...] = ()
           ) -> dict:
    """`payload` with `more`'s runs of the `seeded` variants added (the seeds must differ);
    the unseeded baselines stay `payload`'s. `drop`: variants whose runs in `payload`
    are discarded first (measured by code that has changed since). Per-variant and
    fold summaries recomputed."""
    for fold, entry in more["folds"].items():
        results = payload["folds"][fold]["results"]
        for variant, result in entry["results"].items():
            if variant not in seeded or variant not in results:
                continue
            runs = [] if variant in drop else results[variant]["runs"]
            clash = {r["seed"] for r in runs} & {r["seed"] for r in result["runs"]}
            if clash:
                raise SystemExit(f"{fold} {variant}: seeds {sorted(clash)} are in both results")
            runs = runs + result["runs"]
            results[variant] = {**aggregate(runs), "runs": runs}
    groups: dict[str, list[str]] = {}  # seeds -> the variants that ran them
    for fold, entry in payload["folds"].items():
        for variant, result in entry["results"].items():
            if variant in seeded:
                seeds = ", ".join(str(s) for s in sorted(r["seed"] for r in result["runs"]))
                groups.setdefault(f"seeds {seeds} on {fold}", []).append(variant)
    payload["setup"]["seeds"] = "; ".join(
        f"{label} ({', '.join(variants)})" for label, variants in groups.items()
    ) + " (runs of several commands, merged with quality.py --merge)"
    payload["config"] = more["config"]  # the current code's (the later run's)
    payload["summary"] = summarize(payload["folds"])
    return payload
