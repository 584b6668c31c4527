"""TextEncoder executor: catalogue text -> WordPiece + small BERT -> item vectors.

Runs Keras 3 (keras-nlp) in a process where `tf.keras` is Keras 2 (mtrec sets
TF_USE_LEGACY_KERAS); nothing here touches `tf.keras`, so the two never mix.
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from mtrec.components.text_encoder import artifacts as layout
from mtrec.components.text_encoder.config import MODE_PRETRAIN, TextEncoderConfig
from mtrec.components.text_encoder.corpus import catalog_files, read_catalog
from mtrec.contracts.pipeline import ITEM_CATALOG, ITEM_TEXT_EMBEDDINGS

ENCODE_BATCH_SIZE = 256


class Executor(base_executor.BaseExecutor):
    """Builds the vocabulary, trains (or loads) the encoder, encodes the catalogue."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        config = TextEncoderConfig.from_exec_properties(exec_properties)
        output = artifact_utils.get_single_instance(output_dict[ITEM_TEXT_EMBEDDINGS])
        metadata = run_text_encoder(catalog_files(input_dict[ITEM_CATALOG]), output.uri, config)
        output.set_int_custom_property("embedding_dim", metadata["embedding_dim"])
        output.set_int_custom_property("num_items", metadata["num_items"])
        output.set_string_custom_property("mode", config.mode)
        output.set_float_custom_property("pretrain_seconds", metadata["mlm"]["seconds"])


def run_text_encoder(
    files: list[str], output_uri: str, config: TextEncoderConfig
) -> dict[str, Any]:
    """The whole job without TFX types (reusable from a benchmark); returns metadata."""
    # Heavy imports here so that importing the executor module stays cheap.
    import keras
    import numpy as np

    from mtrec.components.text_encoder import encoder, export, pretrain, tokenization

    started, cpu_started = time.monotonic(), time.process_time()
    keras.utils.set_random_seed(config.seed)
    items = read_catalog(files)
    texts = [item.text for item in items]
    logging.info("TextEncoder: %d catalogue items, e.g. %r", len(items), texts[0])

    t0 = time.monotonic()
    if config.mode == MODE_PRETRAIN:
        vocabulary = tokenization.build_vocabulary(texts, config.vocab_size)
        tokenizer = tokenization.make_tokenizer(vocabulary)
        backbone = encoder.build_backbone(config, len(vocabulary))
        sequence_length = config.sequence_length
    else:
        backbone, tokenizer = encoder.load_preset(config.preset_dir)
        vocabulary = tokenizer.get_vocabulary()
        sequence_length = min(config.sequence_length, backbone.max_sequence_length)
    vocab_seconds = time.monotonic() - t0
    logging.info(
        "TextEncoder: vocabulary %d tokens, backbone %d params (%.1fs)",
        len(vocabulary),
        backbone.count_params(),
        vocab_seconds,
    )

    tokens = tokenization.tokenize(tokenizer, texts)
    sequences = tokenization.pack_sequences(tokenizer, tokens, sequence_length)
    lengths = np.array([len(t) for t in tokens])
    truncated = int((lengths > sequence_length - 2).sum())
    report = pretrain.train_mlm(
        backbone,
        tokenizer,
        sequences,
        steps=config.train_steps,
        batch_size=config.batch_size,
        mask_rate=config.mask_rate,
        learning_rate=config.effective_learning_rate,
        seed=config.seed,
        log_every_steps=config.log_every_steps,
    )

    t0 = time.monotonic()
    model = encoder.build_encoder_model(backbone)
    text_encoder = export.TextEncoderFunction(tokenizer, model, sequence_length)
    embeddings = text_encoder.encode(texts, ENCODE_BATCH_SIZE)
    encode_seconds = time.monotonic() - t0
    logging.info("TextEncoder: encoded %d items in %.1fs", len(texts), encode_seconds)

    t0 = time.monotonic()
    uri = output_uri
    fileio.makedirs(uri)
    export.write_text_lines(os.path.join(uri, layout.VOCAB_FILE), vocabulary)
    export.write_embeddings(uri, [item.item_id for item in items], embeddings)
    text_encoder.export(os.path.join(uri, layout.ENCODER_DIR))
    model.save(os.path.join(uri, layout.KERAS_MODEL_FILE))
    backbone.save_to_preset(os.path.join(uri, layout.PRESET_DIR))
    tokenizer.save_to_preset(os.path.join(uri, layout.PRESET_DIR))
    export_seconds = time.monotonic() - t0

    metadata = {
        "mode": config.mode,
        "config": config.to_dict(),
        "learning_rate": config.effective_learning_rate,
        "num_items": len(items),
        "embedding_dim": int(embeddings.shape[1]),
        "l2_normalized": True,
        "pooling": "mean over non-padding tokens ([CLS]/[SEP] included)",
        "item_text_format": "lower(title | genre genre | description)",
        "vocabulary_size": len(vocabulary),
        "sequence_length": sequence_length,
        "num_truncated_texts": truncated,
        "mean_text_tokens": float(lengths.mean()),
        "encoder_params": int(backbone.count_params()),
        "mlm": {
            "steps": report.steps,
            "train_sequence_length": report.train_sequence_length,
            "loss_before": report.loss_before,
            "accuracy_before": report.accuracy_before,
            "loss_after": report.loss_after,
            "accuracy_after": report.accuracy_after,
            "final_train_loss": report.final_train_loss,
            "seconds": report.seconds,
            "cpu_seconds": report.cpu_seconds,
        },
        "seconds": {
            "vocabulary_and_model": vocab_seconds,
            "mlm": report.seconds,
            "encode": encode_seconds,
            "export": export_seconds,
            "total": time.monotonic() - started,
            "total_cpu": time.process_time() - cpu_started,
        },
        "bytes": {
            "encoder_saved_model": export.directory_bytes(os.path.join(uri, layout.ENCODER_DIR)),
            "keras_model": export.directory_bytes(os.path.join(uri, layout.KERAS_MODEL_FILE)),
        },
    }
    export.write_metadata(uri, metadata)
    logging.info("TextEncoder: done in %.1fs: %s", metadata["seconds"]["total"], metadata["mlm"])
    return metadata
