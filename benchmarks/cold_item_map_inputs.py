"""What the cold-item map reads: the text vector alone, or the description's own vector
beside it, and the ridge's l2, in recommend's first stage (numpy).

    .venv/bin/python benchmarks/cold_item_map_inputs.py --weights DIR [--seed 2]
    .venv/bin/python benchmarks/cold_item_map_inputs.py --weights DIR --map-weights 0.75,1,1.5

The map (models/cold_item_map.py) predicts, from an item's frozen MiniLM vectors,
what its ratings added to its candidate vector. Its input was the vector of the
item's full text ("title | genres | year | description"); here it is compared
with [that vector ; the vector of the description alone] (ItemText.map_rows_for,
zeros for an item without a description), at several l2, the description block
at half and twice its scale, with a has-description flag, and packed to fewer
tokens (--description-lengths; the TextEncoder's own table is packed to
TextEncoderConfig.description_length, 16 since session 34; before, to the
catalogue's sequence length). With --map-weights, only the product's input (the
TextEncoder's two tables at ModelConfig's l2) at each cold_item_map_weight. As in
cold_item_first_stage.py (whose FirstStage replays stage 1 on the same
`cold_item_validation.py --train-only` weights), the cold term's weight t is
bisected so that NDCG@10 equals the no-map default's (t 0.04), so cold HR@100
compares at equal warm cost. Writes cold_item_map_inputs{,_seed<N>}.{json,md}
(cold_item_map_weights{,_seed<N>} with --map-weights) under --out (N: --seed,
when not 1).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np

from mtrec.components.text_encoder import encoder, export, minilm
from mtrec.components.text_encoder.corpus import read_catalog
from mtrec.components.text_encoder.export import description_vectors
from mtrec.data.artifact_io import split_files
from mtrec.models.cold_item_map import fit_cold_item_map
from mtrec.models.config import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_item_first_stage import (
    FirstStage,
    parse_args,
    run_grid,
)

L2 = (3.0, 10.0, 30.0, 100.0)


def description_tables(stage: FirstStage, lengths: list[int]) -> dict[int, np.ndarray]:
    """{L: [N, D]}: the frozen MiniLM's vector of each item's description alone, packed
    to L tokens ([CLS] and [SEP] included), in the stage's item order; zero rows for
    none (export.description_vectors, as the TextEncoder encodes them)."""
    items = {i.item_id: i for i in read_catalog(split_files(str(stage.catalog_dir)))}
    texts = [items[i.decode() if isinstance(i, bytes) else i].description_text
             for i in stage.item_ids.tolist()]
    backbone, tokenizer = encoder.load_preset(str(minilm.preset_dir()[0]))
    model = encoder.build_encoder_model(backbone)
    function = export.TextEncoderFunction(tokenizer, model, max(lengths))
    return {n: description_vectors(functools.partial(function.encode_texts, length=n),
                                   texts, stage.text.shape[1]) for n in lengths}


def mapped(stage: FirstStage, inputs: np.ndarray, l2: float, weight: float = 1.0
           ) -> np.ndarray:
    """Candidate vectors with the cold rows corrected by a map fitted on `inputs`, as
    cold_item_map.catalogue_vectors fits and applies it (`weight`: cold_item_map_weight)."""
    k = stage.known
    fitted = fit_cold_item_map(inputs[k], stage.trained[k], stage.as_cold[k],
                               stage.popularity[k], l2)
    return stage.with_cold(stage.as_cold + weight * fitted.correction(inputs))


def weighted(stage: FirstStage, weights: list[float]) -> dict[str, np.ndarray]:
    """The product's map input (the TextEncoder's two tables) at its l2, at each
    cold_item_map_weight: does the weight chosen for the text-only map still hold with
    the description block?"""
    inputs, l2 = np.hstack([stage.text, stage.descriptions]), ModelConfig().cold_item_map_l2
    return {"no map (the tower's vector)": stage.trained, **{
        f"text + description, l2 {l2:g}, weight {w:g}": mapped(stage, inputs, l2, w)
        for w in weights}}


def variants(stage: FirstStage, lengths: list[int]) -> dict[str, np.ndarray]:
    text, descriptions = stage.text, stage.descriptions
    if not descriptions.shape[1]:
        raise SystemExit("this catalogue has no descriptions: nothing to compare")
    both = np.hstack([text, descriptions])
    has = np.any(descriptions != 0, axis=1, keepdims=True).astype(np.float32)
    out = {"no map (the tower's vector)": stage.trained}
    for l2 in L2:
        out[f"text, l2 {l2:g}"] = mapped(stage, text, l2)
        out[f"text + description, l2 {l2:g}"] = mapped(stage, both, l2)
    for scale in (0.5, 2.0):
        out[f"text + {scale:g} x description, l2 30"] = mapped(
            stage, np.hstack([text, scale * descriptions]), 30.0)
    out["text + description + has-description flag, l2 30"] = mapped(
        stage, np.hstack([both, has]), 30.0)
    for length, table in description_tables(stage, lengths).items():
        for l2 in (10.0, 30.0):
            out[f"text + description packed to {length} tokens, l2 {l2:g}"] = mapped(
                stage, np.hstack([text, table]), l2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--description-lengths", default="16,24,32,64",
                        help="also the description packed to each of these token counts")
    parser.add_argument("--map-weights", help="instead: the product's map input at these "
                        "cold_item_map_weight values (comma-separated)")
    known, rest = parser.parse_known_args(argv)
    args = parse_args(__doc__.split("\n")[0], rest)
    lengths = [int(n) for n in known.description_lengths.split(",") if n]
    stage = FirstStage(args.weights, Path(args.work_dir), args.seed)
    print(f"{int(np.any(stage.descriptions != 0, axis=1).sum())} items with a description, "
          f"{int((~stage.known).sum())} without training ratings", flush=True)
    if known.map_weights:
        run_grid(stage, weighted(stage, [float(w) for w in known.map_weights.split(",")]),
                 args, "cold_item_map_weights", "The cold-item map's weight with the "
                 "description block, in recommend's first stage", "cold_item_map_inputs.py")
        return 0
    run_grid(stage, variants(stage, lengths), args, "cold_item_map_inputs",
             "The cold-item map's inputs in recommend's first stage", "cold_item_map_inputs.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
