"""Cold-item vectors compared in recommend's first stage alone, at equal NDCG@10 (numpy).

    .venv/bin/python benchmarks/cold_item_first_stage.py --weights DIR

The weights of a `cold_item_validation.py --train-only` run (ml-latest-small
validation cut, cold draw --seed) are loaded once; the users' queries, every
catalogue item's candidate vector and its unknown-id-plus-text vector are
dumped to numpy, and the first stage is re-played there: similarity + t x the
cold term (item_item.cold_item_term), the user's training items excluded, no
re-rank. It reproduces the served cold HR@100 within ~0.004. For each way of
building the cold items' vectors, t is bisected so that stage 1's NDCG@10
equals the default's (t 0.04, tower vectors): cold HR@100 then compares at
equal warm cost. Variants: ridge maps from the text (models/cold_item_map.py's
fit_ridge) to the trained vectors or to their difference from the unknown-id
ones, weights, and a norm calibration (cold vectors scaled). Writes
cold_item_first_stage.{json,md} under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.contracts import features as F
from mtrec.models.cold_item_map import fit_ridge
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_item import known_rows
from mtrec.models.item_text import ItemText
from mtrec.models.serving_ops import profile_inputs
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model
from mtrec.models.weights_file import load_config, restore_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_item_validation import LABELS, validation_data
from quality_data import default_data_path
from text_encoder import encode_catalog
from text_encoder_metrics import arrived_rows, cold_rows
from transform_local import as_dataset

REPO = Path(__file__).resolve().parents[1]
K, TOP = 100, 10


class FirstStage:
    """The validation cut's queries, catalogue and held-out interactions, as arrays."""

    def __init__(self, weights: str, work_root: Path, seed: int) -> None:
        prepared, work, cold = validation_data(default_data_path("ml-latest-small"),
                                               work_root, seed)
        uri, _ = encode_catalog(work / "examples" / "catalog", work_root / LABELS[
            "ml-latest-small"], TextEncoderConfig.from_exec_properties({"mode": "pretrained"}))
        text = ItemText.load(uri)
        sizes = VocabSizes.from_transform_output(prepared.tft_output)
        tables = build_serving_tables(as_dataset(prepared.train, 8192), sizes, read_catalog(
            str(work / "examples" / "catalog"), prepared.tft_output))
        model = build_model(sizes, load_config(weights), prepared.tft_output, tables, text)
        model({k: v[:2] for k, v in prepared.train.items()})
        restore_weights(model, weights)
        inputs = {k: tf.constant(v) for k, v in tables.item_features.items()}
        self.text = text.rows_for(tables.item_ids)
        self.item_ids, self.catalog_dir = tables.item_ids, work / "examples" / "catalog"
        self.descriptions = text.map_rows_for(tables.item_ids)[:, text.dim:]  # [N, 0]: none
        inputs[F.ITEM_TEXT_VECTOR] = tf.constant(self.text)
        self.trained = model.candidate_embedding(inputs).numpy()
        self.as_cold = model.candidate_embedding(
            {**inputs, F.ITEM_IDX: tf.zeros_like(inputs[F.ITEM_IDX])}).numpy()
        idx = tables.item_features[F.ITEM_IDX]
        self.known = known_rows(idx, sizes.known_items)
        self.popularity = model.item_sampling_prob.numpy()[idx]
        truth = prepared.truth()
        user_idx = prepared.tft_output.transform_features_layer()(
            {F.USER_ID: tf.reshape(tf.constant(truth.users), [-1, 1])})[F.USER_IDX]
        profiles = {k: tf.constant(v) for k, v in tables.profiles.items()}
        self.queries = model.query_embedding(profile_inputs(profiles, user_idx)).numpy()
        position = {item: n for n, item in enumerate(tables.item_ids.tolist())}
        self.item_pos = np.array([position[i] for i in truth.items.tolist()])
        self.row_user = truth.row_user
        self.is_cold = cold_rows(truth.items, cold)
        self.is_arrived = arrived_rows(truth, cold)
        self.seen = np.zeros((len(truth.users), len(idx)), bool)
        for row, s in enumerate(truth.seen):
            self.seen[row, [position[i] for i in truth.catalog[s].tolist()]] = True
        self.relevant = [np.flatnonzero(np.bincount(self.item_pos[self.row_user == r],
                                                    minlength=len(idx))) for r in
                         range(len(truth.users))]

    def measure(self, vectors: np.ndarray, t: float) -> dict[str, float]:
        """Cold / warm-item / arrived-item / all HR@100 and NDCG@10 of stage 1 with these
        vectors (arrived: no training ratings, not drawn; text_encoder_metrics)."""
        s = self.queries @ vectors.T
        s = s + t * (s - s.mean(axis=1, keepdims=True)) * ~self.known
        s[self.seen] = -1e9
        top = np.argsort(-s, axis=1)[:, :K]
        hit = np.zeros_like(self.seen)
        np.put_along_axis(hit, top, True, axis=1)
        h = hit[self.row_user, self.item_pos]
        discount = 1 / np.log2(np.arange(2, TOP + 2))
        ndcg = [discount[np.isin(top[r, :TOP], rel)].sum() / discount[:min(TOP, len(rel))].sum()
                for r, rel in enumerate(self.relevant) if len(rel)]
        return {"cold_hr@100": float(h[self.is_cold].mean()),
                "warm_hr@100": float(h[~self.is_cold].mean()),
                "arrived_hr@100": float(h[self.is_arrived].mean()), "all_hr@100": float(h.mean()),
                "ndcg@10": float(np.mean(ndcg))}

    def matched(self, vectors: np.ndarray, target: float) -> dict[str, float]:
        """measure() at the cold-term weight t in [-0.5, 1.5] whose NDCG@10 is `target`."""
        lo, hi = -0.5, 1.5
        for _ in range(12):  # NDCG@10 falls as t rises
            t = (lo + hi) / 2
            out = self.measure(vectors, t)
            lo, hi = (t, hi) if out["ndcg@10"] > target else (lo, t)
        return {"t": round(t, 3), **out}

    def with_cold(self, cold_vectors: np.ndarray) -> np.ndarray:
        out = self.trained.copy()
        out[~self.known] = cold_vectors[~self.known]
        return out


def variants(stage: FirstStage) -> dict[str, np.ndarray]:
    """Candidate vectors with the cold rows built each way."""
    k, x = stage.known, stage.text
    counts = stage.popularity[k] / stage.popularity[k].mean()
    coef, bias = fit_ridge(x[k], stage.trained[k], 1.0)
    to_trained = x @ coef + bias
    out = {"tower (unknown id + text)": stage.trained,
           "ridge to the trained vector, l2 1": stage.with_cold(to_trained),
           "the same, half blended": stage.with_cold((to_trained + stage.as_cold) / 2)}
    coef, bias = fit_ridge(x[k], stage.trained[k], 1.0, counts)
    out["ridge to the trained vector, weights = ratings, l2 1"] = stage.with_cold(x @ coef + bias)
    diff = stage.trained[k] - stage.as_cold[k]
    coef, bias = fit_ridge(x[k], diff, 1.0)
    out["tower + ridge to the difference, its mean kept, l2 1"] = stage.with_cold(
        stage.as_cold + x @ coef + bias)
    for name, weights in (("uniform", None), ("sqrt(ratings)", np.sqrt(counts)),
                          ("ratings", counts)):
        coef, bias = fit_ridge(x[k], diff, 10.0, weights)
        w = np.ones(k.sum()) if weights is None else weights
        centre = w @ x[k] / w.sum()
        out[f"tower + ridge to the difference without its mean, {name}, l2 10"] = (
            stage.with_cold(stage.as_cold + (x - centre) @ coef))
    for scale in (0.6, 0.8, 1.2):
        out[f"tower scaled x{scale}"] = stage.with_cold(scale * stage.as_cold)
    return out


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    """The flags of this script and of the grids that replay the same first stage."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--weights", required=True, help="cold_item_validation --train-only's")
    parser.add_argument("--seed", type=int, default=1, help="the validation cold draw")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "text_encoder"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    return parser.parse_args(argv)


def matched_rows(stage: FirstStage, vectors: dict[str, np.ndarray]) -> tuple[float, dict]:
    """(the default's NDCG@10, each variant matched to it), printed as they are measured."""
    target = stage.measure(stage.trained, 0.04)["ndcg@10"]
    rows = {}
    for name, cold in vectors.items():
        rows[name] = stage.matched(cold, target)
        print(name, json.dumps({k: round(v, 4) for k, v in rows[name].items()}), flush=True)
    return target, rows


def write_results(out: str, stem: str, payload: dict, markdown_text: str) -> None:
    """<out>/<stem>.json and .md."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    (folder / f"{stem}.md").write_text(markdown_text)


def run_grid(stage: FirstStage, vectors: dict[str, np.ndarray], args: argparse.Namespace,
             stem: str, title: str, script: str) -> None:
    """Match every variant to the default's NDCG@10 and write <stem>{,_seed<N>}.{json,md}
    under --out (N: the cold draw, when not 1), as this script and the grids that replay
    its first stage do."""
    target, rows = matched_rows(stage, vectors)
    payload = {"ndcg@10 target": target, "seed": args.seed, "rows": rows}
    write_results(args.out, stem + ("" if args.seed == 1 else f"_seed{args.seed}"), payload,
                  markdown(payload, f"{title}, at equal NDCG@10 (cold draw seed {args.seed})",
                           script))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n")[0], argv)
    stage = FirstStage(args.weights, Path(args.work_dir), args.seed)
    run_grid(stage, variants(stage), args, "cold_item_first_stage",
             "Cold-item vectors in recommend's first stage", "cold_item_first_stage.py")
    return 0


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"  # results before session 36 lack it


def markdown(payload: dict, title: str, script: str) -> str:
    """One row a variant: the cold-term weight matched to the NDCG@10 target, and its HR@100s."""
    rows = [f"| {name} | {r['t']} | {r['cold_hr@100']:.4f} | {r['warm_hr@100']:.4f} | "
            f"{_cell(r.get('arrived_hr@100'))} | {r['all_hr@100']:.4f} | {r['ndcg@10']:.4f} |"
            for name, r in payload["rows"].items()]
    return "\n".join([
        f"# {title}",
        "",
        f"benchmarks/{script}: ml-latest-small validation cut, one training's "
        "weights; stage 1 alone (similarity + t x the cold term, training items excluded), "
        f"t set so that NDCG@10 = {payload['ndcg@10 target']:.4f} (the default's).",
        "",
        "| cold vectors | t | cold HR@100 | warm-item HR@100 | arrived-item HR@100 | "
        "all HR@100 | NDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
