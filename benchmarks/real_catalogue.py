"""The real ML-100K u1 towers and heads over a catalogue grown to N items, for serving scale.

`benchmarks/serving.py --catalog-sizes 100000 1000000` serves these: the
query tower, the candidate tower and the relevance/rating re-rank heads are the
ones `mtrec run` trains (same preprocessing, `build_model`, production export),
only the catalogue is larger. The extra items are the real items' candidate
features repeated (item_idx, genres, year, title tokens) under new ids, so every
one of them goes through the real candidate tower and the export's lookups
(id -> position hash table, item vectors, re-rank gathers) grow to N.

Two things cannot grow with N on this machine and are left out at every N > the
real catalogue, so the measured graph is the export's large-catalogue path:
* the item-item stage-1 term: its matrix is [known items, N] (6.7 GB at 1M);
  `item_item_weight` is 0 here;
* the per-user tables over items (`user_seen`, `user_item_item`, [943, N]): the
  export skips them above 2^24 floats (models/serving_ops.py `fits`), so seen
  items are excluded by the ragged scatter, as any large export does.
The per-user query table (943 x 128) is kept. The towers and heads are
benchmarks/real_model.py's trained weights (trained there unless cached), with
the item-item term set to 0, a serving-only setting. From
ModelConfig.ivf_min_items items on, the export's first stage is the IVF index
(models/ivf.py; recall in benchmarks/results/ivf_recall.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf
from quality_data import default_data_path, prepare
from real_model import DONE as TRAINED
from real_model import real_model, weights_dir
from transform_local import as_dataset

from mtrec.models.export import export_serving_model
from mtrec.models.serving_tables import ServingTables, build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model
from mtrec.models.weights_file import load_config, restore_weights

if TYPE_CHECKING:
    from collections.abc import Callable

DONE = "EXPORTED"
_CHUNK = 65_536  # candidate-tower rows per call: bounds the intermediate tensors


def grown_tables(tables: ServingTables, items: int) -> ServingTables:
    """`tables` with the catalogue repeated to `items` rows; ids of the copies are new.

    The first rows are the real catalogue unchanged, so seen-item positions and
    every known user's history stay valid.
    """
    n = tables.num_items
    if items < n:
        raise ValueError(f"catalogue of {items} items is smaller than the real one ({n})")
    source = np.arange(items) % n
    extra = np.array([b"syn-%d" % i for i in range(n, items)], dtype=object)
    return dataclasses.replace(
        tables,
        item_ids=np.concatenate([tables.item_ids.astype(object), extra]),
        item_features={k: v[source] for k, v in tables.item_features.items()},
    )


def _chunked(fn: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
    def call(x: dict, training: bool = False) -> tf.Tensor:
        rows = next(iter(x.values())).shape[0]
        if rows is None or rows <= _CHUNK:  # traced (signatures, Keras saving) or small
            return fn(x, training=training)
        parts = [fn({k: v[s:s + _CHUNK] for k, v in x.items()}, training=training)
                 for s in range(0, rows, _CHUNK)]
        return tf.concat(parts, axis=0)
    return call


def real_catalogue_models(work_root: str, sizes: list[int], epochs: int = 2,
                          data: str | None = None) -> dict[int, str]:
    """{N: exported model dir}, exported per N now unless cached (real_model's weights)."""
    prepared, work = prepare("ml-100k", data or default_data_path("ml-100k"), "u1",
                             Path(work_root))
    dirs = {n: work / f"catalogue-{n}-e{epochs}-ivf" for n in sizes}
    todo = [n for n, d in dirs.items() if not (d / DONE).exists()]
    if todo:
        weights = weights_dir(work, epochs)
        if not (weights / TRAINED).exists():
            real_model(work_root, epochs, data)
        config = dataclasses.replace(load_config(str(weights)), item_item_weight=0.0)
        tft_output = prepared.tft_output
        vocab = VocabSizes.from_transform_output(tft_output)
        tables = build_serving_tables(as_dataset(prepared.train, 8192), vocab)
        model = build_model(vocab, config, tft_output, tables)
        model({k: v[:2] for k, v in prepared.train.items()})  # build every layer, then restore
        restore_weights(model, str(weights))
        # One call over 1M rows would hold every intermediate of the tower at once, so
        # this model's method is deliberately replaced by a chunked wrapper before export.
        model.candidate_embedding = _chunked(  # type: ignore[method-assign]
            model.candidate_embedding)
        for n in todo:
            export_serving_model(model, tft_output, grown_tables(tables, n), str(dirs[n]))
            (dirs[n] / DONE).write_text(json.dumps({"epochs": epochs, "items": n}))
    return {n: str(d) for n, d in dirs.items()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description="Export the real-tower models of grown catalogues (serving.py "
        "--catalog-sizes drives this) and print their directories.")
    parser.add_argument("work_dir", nargs="?", default=os.path.join("/tmp", "mtrec-serving-bench"))
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000_000])
    args = parser.parse_args(argv)
    print(real_catalogue_models(args.work_dir, args.sizes))


if __name__ == "__main__":
    main(sys.argv[1:])
