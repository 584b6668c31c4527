"""The TextEncoder's item vectors, lined up with what the recommender indexes.

The encoder's vectors share a large common direction (mean cosine ~0.7 on
ML-100K), so they are centred and re-normalised before the candidate tower's
learned projection sees them; the same centring is applied to every vector
(catalogue, cold items at serving time).

The descriptions' own vectors (the description alone, zeros where none) are not
a tower input: they are the cold-item map's second block (models/cold_item_map.py).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.artifacts import (
    DESCRIPTION_EMBEDDINGS_FILE,
    EMBEDDINGS_FILE,
    ENCODER_DIR,
    ITEM_IDS_FILE,
)

if TYPE_CHECKING:
    import tensorflow_transform as tft


@dataclasses.dataclass
class ItemText:
    ids: dict[str, int]  # item id -> row of `vectors`
    vectors: np.ndarray  # float32 [N, D], centred and L2-normalised
    mean: np.ndarray  # float32 [D], subtracted from raw encoder vectors
    encoder_dir: str | None  # TF SavedModel: text -> raw vector
    # float32 [N, D]: the description alone, L2-normalised, not centred; zero rows for
    # none; None when the artifact has no such table (an artifact older than the table)
    descriptions: np.ndarray | None = None

    @classmethod
    def load(cls, uri: str) -> ItemText:
        """From an ItemTextEmbeddings artifact (the TextEncoder's output) at `uri`."""
        ids, raw = load_item_text_embeddings(uri)
        mean = raw.mean(axis=0).astype(np.float32)
        encoder_dir = os.path.join(uri, ENCODER_DIR)
        descriptions_file = os.path.join(uri, DESCRIPTION_EMBEDDINGS_FILE)
        descriptions = None
        if tf.io.gfile.exists(descriptions_file):
            with tf.io.gfile.GFile(descriptions_file, "rb") as f:
                descriptions = np.load(f).astype(np.float32)
            if descriptions.shape != raw.shape:
                raise ValueError(f"{descriptions_file}: shape {descriptions.shape}, "
                                 f"the item vectors' is {raw.shape}")
        return cls(
            ids={item: i for i, item in enumerate(ids)},
            vectors=centre(raw, mean),
            mean=mean,
            encoder_dir=encoder_dir if tf.io.gfile.isdir(encoder_dir) else None,
            descriptions=descriptions,
        )

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def has_descriptions(self) -> bool:
        """Whether any item has a description vector (ML-100K's catalogue has none)."""
        return self.descriptions is not None and bool(self.descriptions.any())

    def rows_for(self, item_ids: Sequence[bytes | str] | np.ndarray) -> np.ndarray:
        """Vectors for raw item ids (bytes or str); zeros for ids without text."""
        return self._gather(self.vectors, item_ids)

    def map_rows_for(self, item_ids: Sequence[bytes | str] | np.ndarray) -> np.ndarray:
        """The cold-item map's inputs for raw item ids: [text vector ; description vector]
        ([N, 2D]) when the catalogue has descriptions, else the text vectors ([N, D])."""
        text = self.rows_for(item_ids)
        if self.descriptions is None or not self.has_descriptions:
            return text
        return np.hstack([text, self._gather(self.descriptions, item_ids)])

    def _gather(self, table: np.ndarray, item_ids: Sequence[bytes | str] | np.ndarray
                ) -> np.ndarray:
        out = np.zeros((len(item_ids), table.shape[1]), dtype=np.float32)
        for row, item in enumerate(item_ids):
            key = item.decode() if isinstance(item, bytes) else str(item)
            if key in self.ids:
                out[row] = table[self.ids[key]]
        return out

    def table(self, tft_output: tft.TFTransformOutput, num_rows: int) -> np.ndarray:
        """[num_rows, D] indexed by item_idx (vocabulary index + 1); zeros elsewhere."""
        vocab = tft_output.vocabulary_by_name(F.ITEM_VOCAB)
        table = np.zeros((num_rows, self.dim), dtype=np.float32)
        table[1 : len(vocab) + 1] = self.rows_for(vocab)
        return table


def load_item_text_embeddings(uri: str) -> tuple[list[str], np.ndarray]:
    """(item ids, float32 [N, D] L2-normalised vectors) from an ItemTextEmbeddings uri.

    The reader lives here, below the text-encoder component, because the
    Trainer's run_fn and re-indexing read the artifact; the component writes it
    with the same file names (contracts/artifacts.py).
    """
    with tf.io.gfile.GFile(os.path.join(uri, ITEM_IDS_FILE), "r") as f:
        item_ids = f.read().splitlines()
    with tf.io.gfile.GFile(os.path.join(uri, EMBEDDINGS_FILE), "rb") as f:
        embeddings = np.load(f)
    if len(item_ids) != len(embeddings):
        raise ValueError(f"{len(item_ids)} ids but {len(embeddings)} embeddings in {uri}")
    return item_ids, embeddings


def centre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    centred = vectors - mean
    norms = np.linalg.norm(centred, axis=-1, keepdims=True)
    return (centred / np.maximum(norms, 1e-6)).astype(np.float32)
