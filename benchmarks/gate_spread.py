"""Seed spread of the Evaluator's gate metrics, and what fewer epochs do to them.

    .venv/bin/python benchmarks/gate_spread.py                           # ML-100K u1
    .venv/bin/python benchmarks/gate_spread.py --dataset ml-latest-small  # per-user time split
    .venv/bin/python benchmarks/gate_spread.py --dataset sample           # what `make run` trains
    .venv/bin/python benchmarks/gate_spread.py --render benchmarks/results/gate_spread_X.json

TFMA's change thresholds (pipeline/configs.py RATING_RMSE_MAX_INCREASE,
RELEVANCE_AUC_MAX_DECREASE) compare a candidate with the last pushed model. A
bound inside the seed-to-seed difference refuses retrainings that are merely
unlucky; one far outside it passes models that are really worse. This trains
the pipeline's model (the Trainer's code path with the split protocol's
settings) with --seeds seeds, and with fewer epochs (--fewer-epochs, seed 0),
the cheapest way to a different model (worse on ML-100K u1; on ml-latest-small
better on these two pointwise metrics), and measures on the held-out
tf.Examples what the Evaluator measures (served_metrics.example_metrics). It
reports each metric's per-model std, the std of the difference between two
seeds (sqrt 2 times it), each bound in units of that std, and against how many
of the seeds' models each fewer-epoch model would be refused.

Writes benchmarks/results/gate_spread_<dataset>_<split|time>.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.models.config import ModelConfig
from mtrec.pipeline import configs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATASETS, REPO, RESULTS, train_ours
from quality_data import add_data_arguments, prepare, resolve, with_protocol
from served_metrics import example_metrics

if TYPE_CHECKING:
    from quality_data import Prepared

# metric -> (label, +1 if higher is worse else -1, the change bound pipeline.py sets)
GATES = {
    "rmse": ("rating RMSE", 1, configs.RATING_RMSE_MAX_INCREASE),
    "relevance_auc": ("relevance AUC", -1, configs.RELEVANCE_AUC_MAX_DECREASE),
}


def train_and_measure(prepared: Prepared, overrides: dict, seed: int, work: Path) -> dict:
    config = ModelConfig.from_dict(overrides)
    model_dir = tempfile.mkdtemp(prefix=f"gate-{config.epochs}-{seed}-", dir=work)
    try:
        trained = train_ours(prepared, config, model_dir, seed)
        served = tf.saved_model.load(model_dir).signatures
        metrics = example_metrics(served["serving_default"], prepared.eval_examples)
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)
    return {"epochs": config.epochs, "seed": seed, **metrics,
            "train_seconds": trained["train_seconds"]}


def summarize(seeded: list[dict], fewer: list[dict]) -> dict:
    """Per gate metric: the seeds' spread, the bound in units of it, and the models trained
    for fewer epochs against each seed's."""
    out = {}
    for key, (label, sign, bound) in GATES.items():
        values = np.array([r[key] for r in seeded])
        std = float(values.std(ddof=1))
        pairs = [abs(a - b) for a, b in itertools.combinations(values, 2)]
        diff_std = std * np.sqrt(2.0)
        out[key] = {
            "label": label,
            "mean": float(values.mean()),
            "std": std,
            "diff_std": diff_std,
            "max_pair_diff": float(max(pairs)),
            "bound": bound,
            "bound_in_diff_std": bound / diff_std if diff_std > 0 else float("inf"),
            "fewer_epochs": [_against_seeds(w, key, values, sign, bound) for w in fewer],
        }
    return out


def _against_seeds(run: dict, key: str, seeds: np.ndarray, sign: int, bound: float) -> dict:
    """How much worse `run` is than each seed's model (positive = worse), and against how
    many of them the change bound refuses it."""
    worsening = [sign * (run[key] - v) for v in seeds.tolist()]
    return {"epochs": run["epochs"], "value": run[key], "worsening": worsening,
            "refused": sum(w > bound for w in worsening)}


def markdown(payload: dict) -> str:
    setup = payload["setup"]
    lines = [
        f"# Gate metrics' seed spread: {setup['dataset']} {setup['split']}",
        "",
        f"Host: {setup['host']}. Written by benchmarks/gate_spread.py. The pipeline's model "
        f"(ModelConfig defaults + the {setup['split_protocol']} split protocol's settings, "
        f"{setup['epochs']} epochs) trained with seeds 0-{setup['seeds'] - 1}, and with fewer "
        "epochs (seed 0). Measured as the Evaluator measures: "
        "`serving_default` on the held-out tf.Examples "
        f"({setup['eval_rows']} rows), RMSE of the rating head, AUC of the relevance head "
        "against rating >= 4 (TFMA's estimator: 10,000 thresholds, interpolated).",
        "",
        "| epochs | seed | rating RMSE | relevance AUC | train s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(f"| {r['epochs']} | {r['seed']} | {r['rmse']:.4f} | "
                     f"{r['relevance_auc']:.4f} | {r['train_seconds']:.0f} |")
    lines += [
        "",
        "| metric | seeds: mean ± std | std of a seed-to-seed difference | largest pair "
        "difference | change bound | bound / difference std |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in payload["summary"].values():
        lines.append(f"| {s['label']} | {s['mean']:.4f} ± {s['std']:.4f} | {s['diff_std']:.4f} "
                     f"| {s['max_pair_diff']:.4f} | {s['bound']:g} | "
                     f"{s['bound_in_diff_std']:.1f} |")
    lines += [
        "",
        "Fewer epochs against each seed's model (worsening: how much worse, negative when "
        "better; refused: by the change bound, out of the seeds' models):",
        "",
        "| metric | epochs | value | worsening (min–max) | refused |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in payload["summary"].values():
        for w in s["fewer_epochs"]:
            lo, hi = min(w["worsening"]), max(w["worsening"])
            lines.append(f"| {s['label']} | {w['epochs']} | {w['value']:.4f} | "
                         f"{lo:+.4f} – {hi:+.4f} | {w['refused']}/{len(w['worsening'])} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(parser, (*DATASETS, "sample"), "an ML-100K split (default u1)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fewer-epochs", type=int, nargs="*", default=[3, 1])
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "quality"))
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    parser.add_argument("--render", metavar="JSON",
                        help="recompute the summary of a results JSON from its runs (e.g. "
                        "after a bound changed) and rewrite it and its markdown")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two models")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        path = Path(args.render)
        payload = json.loads(path.read_text())
        seeds = payload["setup"]["seeds"]
        payload["summary"] = summarize(payload["runs"][:seeds], payload["runs"][seeds:])
        write(path, payload)
        return 0
    split, data, user_overrides = resolve(args)
    prepared, work = prepare(args.dataset, data, split, Path(args.work_dir))
    overrides = with_protocol(prepared, user_overrides)
    runs = []
    for epochs, seed in [(None, s) for s in range(args.seeds)] + [
        (e, 0) for e in args.fewer_epochs
    ]:
        t0 = time.time()
        run_overrides = overrides if epochs is None else {**overrides, "epochs": epochs}
        runs.append(train_and_measure(prepared, run_overrides, seed, work))
        print(f"epochs {runs[-1]['epochs']} seed {seed}: {time.time() - t0:.0f}s "
              f"{json.dumps(runs[-1])}", flush=True)
    seeded, fewer = runs[: args.seeds], runs[args.seeds :]
    payload = {
        "setup": {
            "dataset": args.dataset,
            "split": split or "per-user time",
            "split_protocol": prepared.report["split_protocol"],
            "epochs": seeded[0]["epochs"],
            "seeds": args.seeds,
            "eval_rows": int(len(prepared.eval_examples)),
            "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        },
        "config": overrides,
        "runs": runs,
        "summary": summarize(seeded, fewer),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(write(out / f"gate_spread_{args.dataset}_{split or 'time'}.json", payload))
    return 0


def write(json_path: Path, payload: dict) -> str:
    """The results JSON and its markdown beside it (.md); returns the markdown."""
    text = markdown(payload)
    json_path.write_text(json.dumps(payload, indent=2))
    json_path.with_suffix(".md").write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
