"""Markdown for benchmarks/text_encoder.py: tables, encoder summaries, target verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BASELINE = "no_text"
# Cold HR@100 as served (`recommend`): issue 15's targets. ML-100K: absolute;
# ml-latest-small: 2x the scratch encoder's 0.0646 before MiniLM (commit 4c07b8d).
COLD_TARGETS = {"ml-100k": 0.25, "ml-latest-small": 2 * 0.0646}
SAME = 1e-3  # warm deltas below this are reported as unchanged
BASELINES = ("random", "popularity")  # computed, not trained: no seeds
SEED = "seed"  # a run's training seed (the data order)
SETUP_KEYS = ("dataset", "split", "catalog", "warm", "cold")  # must match to merge

WARM_COLUMNS = (
    ("hit_rate@10", "HR@10"), ("hit_rate@50", "HR@50"), ("hit_rate@100", "HR@100"),
    ("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10"),
    ("rmse", "RMSE"), ("seconds", "train+export s"),
)  # fmt: skip
COLD_COLUMNS = (
    ("cold_hit_rate@10", "cold HR@10"), ("cold_hit_rate@50", "cold HR@50"),
    ("cold_hit_rate@100", "cold HR@100"), ("warm_hit_rate@100", "warm-item HR@100"),
    ("arrived_hit_rate@100", "arrived-item HR@100"), ("seconds", "train+export s"),
)  # fmt: skip
SERVED_COLUMNS = tuple(
    (f"served_{key}", label) for key, label in COLD_COLUMNS if key != "seconds"
)


def encoder_summary(metadata: dict) -> dict:
    """Times and sizes from the TextEncoder's metadata.json."""
    seconds, size = metadata["seconds"], metadata["bytes"]
    return {
        "name": metadata.get("encoder_name", metadata["mode"]),
        "items": metadata["num_items"],
        "params": metadata["encoder_params"],
        "sequence_length": metadata["sequence_length"],
        "text_tokens": metadata.get("text_tokens"),
        "encode_items_per_second": round(metadata["num_items"] / max(seconds["encode"], 1e-9), 1),
        "encode_cached": metadata.get("encode_cached", False),
        "embedding_dim": metadata["embedding_dim"],
        "vocabulary": metadata["vocabulary_size"],
        "mean_text_tokens": round(metadata["mean_text_tokens"], 1),
        "mlm_steps": metadata["mlm"]["steps"],
        "mlm_loss_before": metadata["mlm"]["loss_before"],
        "mlm_loss_after": metadata["mlm"]["loss_after"],
        "mlm_accuracy_after": metadata["mlm"]["accuracy_after"],
        "pretrain_seconds": round(seconds["mlm"], 1),
        "encode_seconds": round(seconds["encode"], 1),
        "total_seconds": round(seconds["total"], 1),
        "saved_model_mb": round(size["encoder_saved_model"] / 2**20, 2),
        "preset_mb": round(size["preset"] / 2**20, 2),
        "reused_from_cache": metadata.get("reused_from_cache", False),
    }


def aggregate(runs: list[dict]) -> dict:
    """Mean of each metric over the runs, the range as 'spread' (2+ runs), and the runs."""
    keys = [k for k in runs[0] if k != SEED]
    out: dict[str, float | dict[str, float]] = {
        k: float(np.mean([r[k] for r in runs])) for k in keys}
    if len(runs) > 1:
        out["spread"] = {k: float(np.ptp([r[k] for r in runs])) for k in keys if k != "seconds"}
    return {**out, "runs": runs}


def runs_of(entry: dict) -> list[dict]:
    """A variant's runs, each with its seed. Results written before seeds were
    recorded: a single run is seed 0, repeats were seeds 0..N-1 (their order)."""
    runs = entry.get("runs") or [{k: v for k, v in entry.items() if k != "spread"}]
    return [{SEED: i, **run} for i, run in enumerate(runs)]


def seeds_of(entry: dict) -> list[int]:
    return sorted(run[SEED] for run in runs_of(entry))


def merged(payload: dict, more: dict) -> dict:
    """`payload` with `more`'s runs of the trained variants added, warm and cold.

    The setups (data, split, cold draw) and the model configs' shared fields
    must match (a field added since, e.g. one only `recommend_from_items`
    reads, does not block) and the seeds must differ; the baselines stay
    `payload`'s.
    """
    differ = [k for k in SETUP_KEYS if payload["setup"].get(k) != more["setup"].get(k)]
    model, more_model = payload["config"]["model"], more["config"]["model"]
    if any(model[k] != more_model[k] for k in model.keys() & more_model.keys()):
        differ.append("model config")
    if differ:
        raise SystemExit(f"cannot merge results of different setups: {differ} differ")
    for section in ("warm", "cold"):
        for name, entry in more[section].items():
            if name in BASELINES:
                continue
            old = runs_of(payload[section][name]) if name in payload[section] else []
            clash = {r[SEED] for r in old} & {r[SEED] for r in runs_of(entry)}
            if clash:
                raise SystemExit(f"{section} {name}: seeds {sorted(clash)} are in both results")
            runs = sorted(old + runs_of(entry), key=lambda r: r[SEED])
            payload[section][name] = aggregate(runs)
    setup = payload["setup"]
    setup["variants"] += [v for v in more["setup"]["variants"] if v not in setup["variants"]]
    payload["encoders"] = {**payload["encoders"], **more["encoders"]}  # the newer export
    payload["config"]["encoders"] = {**more["config"]["encoders"], **payload["config"]["encoders"]}
    total = more["seconds"]["total"]
    payload["seconds"][f"merged_seeds_{more['setup'].get('first_seed', 0)}_total"] = total
    return payload


def merge_files(path: Path, more_path: Path) -> int:
    """--merge: `more_path`'s runs added to the result at `path` (JSON and md rewritten)."""
    write_results(path.parent, merged(json.loads(path.read_text()),
                                      json.loads(more_path.read_text())))  # fmt: skip
    return 0


def write_results(out: Path, payload: dict) -> None:
    """text_encoder_<dataset>.{json,md}; the md ends with text_encoder_<dataset>_notes.md
    (hand-written findings, kept across re-runs) when that file exists."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"text_encoder_{payload['setup']['dataset']}"
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=list))
    notes = out / f"{stem}_notes.md"
    text = markdown(payload) + (f"\n{notes.read_text()}" if notes.is_file() else "")
    (out / f"{stem}.md").write_text(text)
    print(f"wrote {out}/{stem}.{{json,md}}", flush=True)


def table(rows: dict[str, dict], columns: tuple) -> str:
    """Markdown table of means; '±' is half the range over repeated runs."""
    lines = ["| variant | " + " | ".join(label for _, label in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, metrics in rows.items():
        cells = []
        for key, _ in columns:
            value, spread = metrics.get(key), metrics.get("spread", {}).get(key)
            if value is None:
                cells.append("–")
            elif key == "seconds":
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.4f}" + ("" if spread is None else f" ±{spread / 2:.4f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(base: dict, text: dict, key: str, better: int) -> str:
    """Mean vs mean against the runs' half ranges, and the per-seed (paired) deltas.

    When the two ran different seeds, both are compared on the seeds they share.
    """
    base_by_seed = {r[SEED]: r for r in runs_of(base)}
    shared = [r for r in runs_of(text) if r[SEED] in base_by_seed]
    note = ""
    if shared and len(shared) != max(len(base_by_seed), len(runs_of(text))):
        base, text = aggregate([base_by_seed[r[SEED]] for r in shared]), aggregate(shared)
        note = f" on seed{'s' if len(shared) > 1 else ''} {','.join(str(r[SEED]) for r in shared)}"
    delta = text[key] - base[key]
    noise = (base.get("spread", {}).get(key, 0.0) + text.get("spread", {}).get(key, 0.0)) / 2
    verdict = ("unchanged" if abs(delta) < SAME else
               "within the run-to-run spread" if abs(delta) <= noise else
               "better" if delta * better > 0 else "worse")  # fmt: skip
    line = f"{base[key]:.4f} -> {text[key]:.4f}{note} ({delta:+.4f}, {verdict}"
    base_runs = {r[SEED]: r[key] for r in runs_of(base)}
    paired = [r[key] - base_runs[r[SEED]] for r in runs_of(text) if r[SEED] in base_runs]
    if len(paired) > 1:
        worse = sum(d * better < 0 for d in paired)
        line += (f"; same seed: {np.mean(paired):+.4f} ±{np.ptp(paired) / 2:.4f}, "
                 f"worse in {worse} of {len(paired)} seeds")  # fmt: skip
    return line + ")"


def seeds_line(payload: dict) -> str:
    """Which training seeds each trained variant ran, warm and cold."""
    parts = []
    for section in ("warm", "cold"):
        entries = {k: v for k, v in payload[section].items() if k not in BASELINES}
        seeds = ", ".join(f"{k} {','.join(map(str, seeds_of(v)))}" for k, v in entries.items())
        parts.append(f"{section}: {seeds or 'none'}")
    return ("Training seeds (data order) per variant, " + "; ".join(parts) + ". Tables: the "
            "mean, ± half the range over the seeds (one seed: retraining on another data "
            "order can move NDCG@10 and RMSE by ~0.01).")


def verdicts(payload: dict) -> list[str]:
    """Per text variant: warm NDCG@10/RMSE vs no text, and the cold-item target."""
    warm, cold = payload["warm"], payload["cold"]
    target = COLD_TARGETS.get(payload["setup"]["dataset"])
    lines = []
    for name in payload["setup"]["variants"]:
        if name == BASELINE:
            continue
        parts = []
        if BASELINE in warm and name in warm:
            parts.append("warm NDCG@10 " + _verdict(warm[BASELINE], warm[name], "ndcg@10", 1))
            parts.append("RMSE " + _verdict(warm[BASELINE], warm[name], "rmse", -1))
        if name in cold:  # a run cut short may not have reached it
            parts.append(_cold_verdict(cold, name, target))
        if parts:
            lines.append(f"- **{name}**: " + "; ".join(parts))
    return lines


def _cold_verdict(cold: dict, name: str, target: float | None) -> str:
    hr = cold[name]["served_cold_hit_rate@100"]
    rnd = cold["random"]["served_cold_hit_rate@100"]
    line = f"cold HR@100 as served {hr:.4f} ({hr / rnd:.1f}x random"
    if BASELINE in cold:
        line += f", no text {cold[BASELINE]['served_cold_hit_rate@100']:.4f}"
    line += ")"
    if target is not None:
        status = "met" if hr >= target else f"missed by {target - hr:.4f}"
        line += f"; target >= {target:.4f}: {status}"
    arrived = "served_arrived_hit_rate@100"
    if arrived in cold[name]:
        line += f"; arrived items {cold[name][arrived]:.4f}"
        if arrived in cold.get(BASELINE, {}):
            line += f" (no text {cold[BASELINE][arrived]:.4f})"
    return line


def encoder_lines(encoders: dict[str, dict]) -> list[str]:
    lines = ["| variant | encoder | params | dim | seq len | tokens mean/p99/max | MLM steps "
             "| MLM loss | MLM s | encode s | items/s | SavedModel MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in encoders.items():
        tokens = e.get("text_tokens") or {}
        loss = ("–" if e["mlm_loss_before"] is None else
                f"{e['mlm_loss_before']:.2f} -> {e['mlm_loss_after']:.2f}")  # fmt: skip
        cached = " (cached)" if e.get("encode_cached") else ""
        lines.append(
            f"| {name} | {e['name']} | {e['params']:,} | {e['embedding_dim']} | "
            f"{e['sequence_length']} | {tokens.get('mean', 0):.1f}/{tokens.get('p99', 0):.0f}/"
            f"{tokens.get('max', 0)} | {e['mlm_steps']} | {loss} | {e['pretrain_seconds']} | "
            f"{e['encode_seconds']}{cached} | {e['encode_items_per_second']} | "
            f"{e['saved_model_mb']} |"
        )
    return lines


def _arrived_line(setup: dict) -> str:
    count = setup["cold"].get("arrived_interactions")  # not in results before 2026-12-05
    return "" if count is None else (
        f" {count:,} other held-out interactions are on items that have no training "
        "ratings without the draw: they arrived after the split ('arrived-item').")


def markdown(payload: dict) -> str:
    setup = payload["setup"]
    cold = payload["cold"]
    cold_rows = {k: cold[k] for k in ("random", "popularity", *setup["variants"]) if k in cold}
    return "\n".join([
        f"# TextEncoder benchmark: {setup['dataset']} {setup['split']}",
        "",
        f"Host: {setup['host']} (shared with other jobs; times are indicative). Wall time "
        f"{payload['seconds']['total']:.0f}s (the first command). {seeds_line(payload)}",
        "",
        "## Text encoders",
        "",
        *encoder_lines(payload["encoders"]),
        "",
        "Tokens: WordPiece tokens per item text (\"title | genres | year | description\"), "
        "without [CLS]/[SEP]; the sequence length is chosen from that distribution (the "
        "shortest multiple of 8 holding the longest text, capped at the model's maximum). "
        "Encoding: length-sorted batches of 64 on CPU; '(cached)' = read from the "
        "content-hash cache, the time of a real encoding is in an uncached run.",
        "",
        "## Warm ablation (official held-out ratings, full catalogue index)",
        "",
        f"{setup['warm']['train_rows']:,} training / {setup['warm']['eval_rows']:,} held-out "
        f"ratings, {setup['catalog']:,} catalogue items, {setup['warm']['test_users']:,} test "
        "users.",
        "",
        table(payload["warm"], WARM_COLUMNS),
        "",
        "## Cold items",
        "",
        f"{setup['cold']['items']} of {setup['cold']['rated_items']} rated items (fraction "
        f"{setup['cold']['fraction']}, seed {setup['cold']['seed']}) lose all "
        f"{setup['cold']['removed_train_rows']:,} training ratings; "
        f"{setup['cold']['test_interactions']:,} held-out interactions on them "
        f"({setup['cold']['test_users']:,} users) are ranked against all "
        f"{setup['catalog']:,} catalogue items, under two rules.{_arrived_line(setup)}",
        "",
        "**As served** (`recommend`, k=100: the user's training items excluded, blend "
        "re-ranking): what a user of the served model gets.",
        "",
        table(cold_rows, SERVED_COLUMNS),
        "",
        "**Training items ranked** (`retrieve`, FactorizedTopK semantics as in quality.py): "
        "a cold item must also beat the items the user already rated.",
        "",
        table(cold_rows, COLD_COLUMNS),
        "",
        *verdicts(payload),
        "",
        "HR@K: per held-out interaction, is the item in the user's top K of the whole "
        "catalogue. NDCG/P/R@10: `recommend` (training items excluded, blend re-ranking), "
        "binary relevance = every held-out item. RMSE: `serving_default` on the raw held-out "
        "examples. Random: K/N, or K/(N - the user's training items) as served. Popularity: "
        "the most-rated training items (cold items have none, so 0). 'warm-item HR@100' is "
        "the cold-protocol model on the other held-out interactions; 'arrived-item HR@100' "
        "on those of them whose item has no training ratings (it arrived after the split: "
        "real new items, not drawn ones; '–': not measured in that run).",
        "",
        f"Model config: `{json.dumps(payload['config']['model'])}`",
        "",
        f"Encoder configs: `{json.dumps(payload['config']['encoders'])}`",
        "",
    ])
