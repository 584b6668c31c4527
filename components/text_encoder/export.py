"""Writing and reading the ItemTextEmbeddings directory.

The `encoder/` SavedModel wraps tokenizer + packer + Keras encoder in one
`tf.function`, exported with `keras.export.ExportArchive`; it needs only
`tensorflow` and `import tensorflow_text` (for the WordPiece/regex ops) to
load, so TF Serving or a Keras 2 Trainer can use it. `embeddings.npy` is
computed with that very function before export, so the two agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from tfx.dsl.io import fileio

from mtrec.components.text_encoder import artifacts as layout

if TYPE_CHECKING:
    import keras
    import keras_nlp

SIGNATURE = "serving_default"
# The same encoder on an item's description alone, packed to TextEncoderConfig's
# description_length: the cold-item map's second block (models/cold_item_map.py).
DESCRIPTION_SIGNATURE = "description"
INPUT_NAME = "text"
OUTPUT_NAME = "embedding"
Progress = Callable[[int, int], None]  # (texts encoded, texts in all)


class TextEncoderFunction:
    """strings [B] -> {"embedding": float32 [B, D]}: the one encoding path.

    Holds Keras 3 layers (tokenizer, packers, encoder model); `fn` (texts, packed
    to `sequence_length`) and `describe_fn` (descriptions, packed to
    `description_length`, default the same) are the traced functions that both
    encode the catalogue and are exported, so the catalogue vectors and the
    SavedModel cannot drift apart.
    """

    def __init__(self, tokenizer: keras_nlp.models.BertTokenizer, encoder_model: keras.Model,
                 sequence_length: int, description_length: int | None = None) -> None:
        # Lazy: readers of the artifact import this module without keras-nlp.
        from mtrec.components.text_encoder import encoder
        from mtrec.components.text_encoder.tokenization import (
            lower,
            make_packer,
            pack_sequences,
            tokenize,
        )

        self.tokenizer = tokenizer
        self._lower = lower
        self._pack = lambda strings, length: pack_sequences(
            tokenizer, tokenize(tokenizer, strings), length)
        self.packer = make_packer(tokenizer, sequence_length)
        self.description_packer = make_packer(tokenizer, description_length or sequence_length)
        self.encoder_model = encoder_model
        self._keys = (encoder.TOKEN_IDS, encoder.SEGMENT_IDS, encoder.PADDING_MASK)
        spec = [tf.TensorSpec([None], tf.string, name=INPUT_NAME)]
        self.fn = tf.function(self._encode, input_signature=spec)
        self.describe_fn = tf.function(self._describe, input_signature=spec)

    def _encode(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._encode_with(self.packer, text)

    def _describe(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._encode_with(self.description_packer, text)

    def _encode_with(self, packer: keras_nlp.layers.StartEndPacker, text: tf.Tensor
                     ) -> dict[str, tf.Tensor]:
        token_ids, padding_mask = packer(self.tokenizer(self._lower(text)))
        token_ids = tf.cast(token_ids, tf.int32)
        ids_key, segments_key, mask_key = self._keys
        inputs = {
            ids_key: token_ids,
            segments_key: tf.zeros_like(token_ids),
            mask_key: tf.cast(padding_mask, tf.int32),
        }
        embedding = self.encoder_model(inputs, training=False)
        return {OUTPUT_NAME: tf.cast(embedding, tf.float32)}

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """float32 [N, D] for a list of texts, batched, through the exported function."""
        chunks = [
            self.fn(tf.constant(list(texts[i : i + batch_size])))[OUTPUT_NAME].numpy()
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(chunks, axis=0).astype(np.float32)

    def encode_texts(self, strings: list[str], length: int, batch_size: int = 64,
                     progress: Progress | None = None) -> np.ndarray:
        """float32 [N, D]: `strings` packed to `length` tokens ([CLS] and [SEP] included),
        as the exported signature packed to that length encodes them."""
        return self.encode_packed(self._pack(strings, length), batch_size, progress)

    def encode_packed(self, sequences: Sequence[np.ndarray], batch_size: int = 64,
                      progress: Progress | None = None) -> np.ndarray:
        """float32 [N, D] for packed [CLS] x [SEP] id arrays, in length-sorted batches;
        `progress(done, total)` after each batch.

        `fn` pads every text to `sequence_length`; here each batch is padded
        only to its own longest text. Padding is masked out of attention and
        pooling, so the vectors equal `fn`'s (to float rounding, tested), and
        on ml-latest-small (mean 20 tokens, max 256 with tags) this is what
        keeps MiniLM's catalogue encoding within minutes on 2 cores.
        """
        ids_key, segments_key, mask_key = self._keys
        model = self.encoder_model

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2)
        def run(token_ids: tf.Tensor, padding_mask: tf.Tensor) -> tf.Tensor:
            inputs = {
                ids_key: token_ids,
                segments_key: tf.zeros_like(token_ids),
                mask_key: padding_mask,
            }
            return tf.cast(model(inputs, training=False), tf.float32)

        order = np.argsort([len(s) for s in sequences], kind="stable")
        out: np.ndarray | None = None
        pad_id = self.tokenizer.pad_token_id
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(sequences[r]) for r in rows)
            ids = np.full((len(rows), width), pad_id, dtype=np.int32)
            mask = np.zeros((len(rows), width), dtype=np.int32)
            for i, r in enumerate(rows):
                ids[i, : len(sequences[r])] = sequences[r]
                mask[i, : len(sequences[r])] = 1
            vectors = run(tf.constant(ids), tf.constant(mask)).numpy()
            if out is None:
                out = np.zeros((len(sequences), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            if progress is not None:
                progress(start + len(rows), len(order))
        assert out is not None, "no sequences to encode"
        return out

    def export(self, path: str) -> None:
        """SavedModel with signature serving_default(text) -> {"embedding"}.

        The encoder model is deliberately not `track`ed: `add_endpoint` already
        saves every tf.Variable the traced function reads, and `track` would
        add the Keras variables that wrap those same tensors as separate
        checkpoint objects, so each weight was written twice (MiniLM: 185.3 MB
        -> 94.1 MB, 22.7M float32 weights = 90.9 MB plus a 3.6 MB graph).
        The tokenizer and packer are tracked for their vocabulary lookup
        tables, which no variable list would carry; they hold no variables.
        """
        import keras  # lazy: Keras 3 is heavy; readers of the artifact never export

        # Builds the packers (and traces the functions) when the catalogue went
        # through `encode_packed`, which never calls them.
        self.fn(tf.constant([""]))
        self.describe_fn(tf.constant([""]))
        archive = keras.export.ExportArchive()
        archive.track(self.tokenizer)
        archive.track(self.packer)
        archive.track(self.description_packer)
        archive.add_endpoint(SIGNATURE, self.fn)
        archive.add_endpoint(DESCRIPTION_SIGNATURE, self.describe_fn)
        archive.write_out(path, verbose=False)


def description_vectors(encode: Callable[[list[str]], np.ndarray], descriptions: list[str],
                        dim: int) -> np.ndarray:
    """float32 [N, dim]: `encode` (texts -> vectors) of each non-empty description alone,
    zero rows for the empty ones (the cold-item map reads a zero row as none)."""
    rows = [i for i, text in enumerate(descriptions) if text]
    out = np.zeros((len(descriptions), dim), dtype=np.float32)
    if rows:
        out[rows] = encode([descriptions[i] for i in rows])
    return out


def write_text_lines(path: str, lines: Sequence[str]) -> None:
    """UTF-8, one entry per line (ids and tokens never contain newlines)."""
    with fileio.open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def write_embeddings(uri: str, item_ids: Sequence[str], embeddings: np.ndarray,
                     description_embeddings: np.ndarray) -> None:
    """The ids, the full texts' vectors and the descriptions' (zero rows: none)."""
    write_text_lines(os.path.join(uri, layout.ITEM_IDS_FILE), item_ids)
    for name, array in ((layout.EMBEDDINGS_FILE, embeddings),
                        (layout.DESCRIPTION_EMBEDDINGS_FILE, description_embeddings)):
        with fileio.open(os.path.join(uri, name), "wb") as f:
            np.save(f, array.astype(np.float32))


def write_metadata(uri: str, metadata: dict[str, Any]) -> None:
    with fileio.open(os.path.join(uri, layout.METADATA_FILE), "w") as f:
        f.write(json.dumps(metadata, indent=2, sort_keys=True))


def directory_bytes(path: str) -> int:
    """Total size of a file or directory tree (for metadata's size report)."""
    if not fileio.isdir(path):
        return fileio.stat(path).length
    return sum(
        fileio.stat(os.path.join(os.fsdecode(root), os.fsdecode(name))).length
        for root, _, files in fileio.walk(path)
        for name in files
    )


# ------------------------------------------------------------------ readers
# load_item_text_embeddings is in models/item_text.py: the Trainer reads the
# artifact, and models sit below components.


def load_metadata(uri: str | None) -> dict[str, Any] | None:
    """metadata.json of an ItemTextEmbeddings folder (the one reader: the summary and the
    report use it too), or None when there is no folder or no file."""
    path = os.path.join(uri, layout.METADATA_FILE) if uri else None
    if path is None or not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def load_text_encoder(uri: str) -> Any:
    """The exported SavedModel (framework-neutral; no Keras needed).

    Use `m.signatures["serving_default"](text=strings)["embedding"]` or
    `m.serving_default(strings)["embedding"]`. In a Keras 2 model, call it
    inside a layer (weights stay frozen) or wrap with `hub.KerasLayer`. The
    weights live in the signature's captured variables; the revived object's
    `variables` list is empty (export: each weight is saved once).
    """
    # Lazy: only loading the encoder needs them. Registers the WordPiece/regex ops.
    import tensorflow_text  # noqa: F401

    return tf.saved_model.load(os.path.join(uri, layout.ENCODER_DIR))


def load_keras_text_encoder(uri: str) -> tuple[keras.Model, keras_nlp.models.BertTokenizer]:
    """(Keras 3 encoder model, keras-nlp BertTokenizer) for fine-tuning in Keras 3.

    The model takes {"token_ids", "segment_ids", "padding_mask"} (int32 [B, L])
    and returns L2-normalised [B, D]; the backbone is `model.get_layer(...)`.
    """
    # Lazy: Keras 3 and keras-nlp are heavy; the Trainer reads the artifact without them.
    from mtrec.components.text_encoder import encoder

    backbone, tokenizer = encoder.load_preset(os.path.join(uri, layout.PRESET_DIR))
    return encoder.build_encoder_model(backbone), tokenizer
