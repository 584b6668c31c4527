"""TextEncoder executor: catalogue text -> WordPiece + BERT (MiniLM by default) -> item vectors.

Runs Keras 3 (keras-nlp) in a process where `tf.keras` is Keras 2 (mtrec sets
TF_USE_LEGACY_KERAS); nothing here touches `tf.keras`, so the two never mix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from mtrec.components.text_encoder import artifacts as layout
from mtrec.components.text_encoder import cache, minilm
from mtrec.components.text_encoder.config import (
    AUTO,
    MODE_PRETRAINED,
    MODE_SCRATCH,
    PRETRAINED_MODES,
    TextEncoderConfig,
)
from mtrec.components.text_encoder.corpus import catalog_files, read_catalog
from mtrec.contracts import artifacts as A
from mtrec.contracts.pipeline import ITEM_CATALOG, ITEM_TEXT_EMBEDDINGS

if TYPE_CHECKING:
    import keras_nlp

    from mtrec.components.text_encoder.pretrain import MlmReport

ENCODE_BATCH_SIZE = 64  # length-sorted batches: small ones pad little
# Catalogues from this size show encoding progress on the console (at each quarter):
# at ~250 texts/s on 2 cores (ml-latest-small), 20 s and more; 100K items were
# minutes of a silent "TextEncoder started".
PROGRESS_MIN_TEXTS = 5_000
SCRATCH_MAX_SEQUENCE_LENGTH = 128  # AUTO's cap for the scratch model


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
        output.set_int_custom_property(A.ENCODED_DIM, metadata[A.ENCODED_DIM])
        output.set_int_custom_property(A.ENCODED_ITEMS, metadata[A.ENCODED_ITEMS])
        output.set_string_custom_property(A.ENCODER_MODE, config.mode)
        output.set_string_custom_property(A.ENCODER_NAME, metadata[A.ENCODER_NAME])
        output.set_float_custom_property(A.PRETRAIN_SECONDS, metadata[A.MLM_REPORT][A.MLM_SECONDS])


def choose_sequence_length(lengths: np.ndarray, requested: int, cap: int) -> int:
    """`requested`, or (AUTO) the shortest multiple of 8 holding every packed text.

    `lengths` are token counts without [CLS]/[SEP]. Padding costs nothing in
    the length-sorted catalogue encoding, so covering the longest text loses
    no description words; the cap is the model's trained maximum.
    """
    if requested != AUTO:
        return min(requested, cap)
    longest = int(lengths.max()) + 2 if len(lengths) else 2
    return max(8, min(cap, -(-longest // 8) * 8))


def length_report(lengths: np.ndarray, sequence_length: int) -> dict[str, Any]:
    """Token-length distribution of the corpus (without [CLS]/[SEP])."""
    percentiles = {f"p{q}": float(np.percentile(lengths, q)) for q in (50, 90, 99)}
    return {
        "mean": float(lengths.mean()),
        **percentiles,
        "max": int(lengths.max()),
        "sequence_length": sequence_length,
        "truncated_texts": int((lengths > sequence_length - 2).sum()),
    }


def _load_model(config: TextEncoderConfig, texts: list[str]) -> tuple[
    keras_nlp.models.BertBackbone | None, keras_nlp.models.BertTokenizer, str, str | None
]:
    """(backbone or None, tokenizer, name, identity hash or None) for the mode.

    The scratch backbone is built later, once the sequence length is known.
    """
    # Heavy (keras-nlp, Keras 3), as in run_text_encoder: importing the executor stays cheap.
    from mtrec.components.text_encoder import encoder, tokenization

    if config.mode == MODE_SCRATCH:
        vocabulary = tokenization.build_vocabulary(texts, config.vocab_size)
        return None, tokenization.make_tokenizer(vocabulary), "scratch-bert", None
    if config.mode in PRETRAINED_MODES:
        preset, digest = minilm.preset_dir()
        backbone, tokenizer = encoder.load_preset(str(preset))
        return backbone, tokenizer, minilm.MODEL_NAME, digest
    assert config.preset_dir, "TextEncoderConfig refuses mode='preset' without preset_dir"
    backbone, tokenizer = encoder.load_preset(config.preset_dir)
    return backbone, tokenizer, f"preset:{os.path.basename(config.preset_dir)}", None


def encoding_progress(what: str, total: int) -> Callable[[int, int], None] | None:
    """A callback that logs "TextEncoder encoding <what> d/n" (the console shows it at
    each quarter, mtrec/console.py), or None for fewer than PROGRESS_MIN_TEXTS texts."""
    if total < PROGRESS_MIN_TEXTS:
        return None

    def progress(done: int, total: int) -> None:
        logging.info("TextEncoder encoding %s %d/%d", what, done, total)

    return progress


def _mlm_metadata(report: MlmReport | None) -> dict[str, Any]:
    if report is None:  # frozen: no masked-LM step or evaluation at all
        return {A.MLM_STEPS: 0, A.MLM_SECONDS: 0.0, "cpu_seconds": 0.0, A.MLM_LOSS_BEFORE: None,
                A.MLM_LOSS_AFTER: None, "accuracy_before": None, "accuracy_after": None,
                "final_train_loss": None, "train_sequence_length": None}  # fmt: skip
    return {
        A.MLM_STEPS: report.steps,
        "train_sequence_length": report.train_sequence_length,
        A.MLM_LOSS_BEFORE: report.loss_before,
        "accuracy_before": report.accuracy_before,
        A.MLM_LOSS_AFTER: report.loss_after,
        "accuracy_after": report.accuracy_after,
        "final_train_loss": report.final_train_loss,
        A.MLM_SECONDS: report.seconds,
        "cpu_seconds": report.cpu_seconds,
    }


def run_text_encoder(
    files: list[str], output_uri: str, config: TextEncoderConfig
) -> dict[str, Any]:
    """The whole job without TFX types (reusable from a benchmark); returns metadata."""
    # Heavy imports here so that importing the executor module stays cheap.
    import keras

    from mtrec.components.text_encoder import encoder, export, pretrain, tokenization

    started, cpu_started = time.monotonic(), time.process_time()
    keras.utils.set_random_seed(config.seed)
    items = read_catalog(files)
    texts = [item.text for item in items]
    logging.info("TextEncoder: %d catalogue items, e.g. %r", len(items), texts[0])

    t0 = time.monotonic()
    backbone, tokenizer, name, digest = _load_model(config, texts)
    tokens = tokenization.tokenize(tokenizer, texts)
    lengths = np.array([len(t) for t in tokens])
    if backbone is None:
        sequence_length = choose_sequence_length(
            lengths, config.sequence_length, SCRATCH_MAX_SEQUENCE_LENGTH
        )
        backbone = encoder.build_backbone(config, tokenizer.vocabulary_size(), sequence_length)
    else:
        sequence_length = choose_sequence_length(
            lengths, config.sequence_length, backbone.max_sequence_length
        )
        if config.mode in PRETRAINED_MODES:
            sequence_length = min(sequence_length, minilm.MAX_SEQUENCE_LENGTH)
    vocabulary = tokenizer.get_vocabulary()
    lengths_info = length_report(lengths, sequence_length)
    load_seconds = time.monotonic() - t0
    logging.info(
        "TextEncoder: %s, %d params, vocabulary %d, sequence length %d (%s) (%.1fs)",
        name, backbone.count_params(), len(vocabulary), sequence_length, lengths_info,
        load_seconds,
    )  # fmt: skip

    sequences = tokenization.pack_sequences(tokenizer, tokens, sequence_length)
    report = None
    if config.mode == MODE_SCRATCH or config.train_steps > 0:
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
    description_length = min(config.description_length, sequence_length)
    text_encoder = export.TextEncoderFunction(tokenizer, model, sequence_length,
                                              description_length)
    frozen = config.mode == MODE_PRETRAINED
    cache_digest = digest if frozen else None

    embeddings, text_cached = cache.encode_cached(
        lambda: text_encoder.encode_packed(sequences, ENCODE_BATCH_SIZE,
                                           encoding_progress("item texts", len(sequences))),
        cache.catalog_cache_file(cache_digest, sequence_length, texts))
    descriptions = [item.description_text for item in items]
    description_embeddings, description_cached = cache.encode_cached(
        lambda: export.description_vectors(  # as the exported `description` signature would
            lambda strings: text_encoder.encode_texts(
                strings, description_length, ENCODE_BATCH_SIZE,
                encoding_progress("descriptions", len(strings))),
            descriptions, embeddings.shape[1]),
        cache.catalog_cache_file(cache_digest, description_length, descriptions, "description"))
    encode_seconds = time.monotonic() - t0
    num_descriptions = sum(map(bool, descriptions))
    logging.info(
        "TextEncoder: encoded %d items and %d descriptions in %.1fs%s", len(texts),
        num_descriptions, encode_seconds, " (cached)" if text_cached else "",
    )  # fmt: skip

    t0 = time.monotonic()
    uri = output_uri
    fileio.makedirs(uri)
    export.write_text_lines(os.path.join(uri, layout.VOCAB_FILE), vocabulary)
    export.write_embeddings(uri, [item.item_id for item in items], embeddings,
                            description_embeddings)

    def write_models(directory: str) -> None:
        text_encoder.export(os.path.join(directory, layout.ENCODER_DIR))
        # The Keras model is the preset's backbone plus two weightless layers
        # (encoder.build_encoder_model), so export.load_keras_text_encoder rebuilds it
        # from the preset: saved as well it held the weights a second time (87 MB).
        backbone.save_to_preset(os.path.join(directory, layout.PRESET_DIR))
        tokenizer.save_to_preset(os.path.join(directory, layout.PRESET_DIR))

    export_cached = cache.write_models_cached(
        cache.export_cache_dir(digest if frozen else None, (sequence_length, description_length),
                          encoder.serialiser_versions()),
        uri,
        write_models,
    )
    export_seconds = time.monotonic() - t0
    logging.info("TextEncoder: wrote the encoder models in %.1fs%s", export_seconds,
                 " (cached)" if export_cached else "")

    metadata = {
        A.ENCODER_MODE: config.mode,
        A.ENCODER_NAME: name,
        "checkpoint_sha256": digest,
        A.ENCODER_CONFIG: config.to_dict(),
        "learning_rate": config.effective_learning_rate,
        A.ENCODED_ITEMS: len(items),
        A.ENCODED_DIM: int(embeddings.shape[1]),
        "l2_normalized": True,
        "pooling": "mean over non-padding tokens ([CLS]/[SEP] included)",
        "item_text_format": "lower(title | genre genre | year | description)",
        "num_descriptions": num_descriptions,  # items with a description vector
        "description_sequence_length": description_length,
        "vocabulary_size": len(vocabulary),
        A.ENCODER_SEQUENCE_LENGTH: sequence_length,
        "text_tokens": lengths_info,
        "num_truncated_texts": lengths_info["truncated_texts"],
        "mean_text_tokens": float(lengths.mean()),
        A.ENCODER_PARAMS: int(backbone.count_params()),
        A.ENCODE_CACHED: text_cached and description_cached,
        "export_cached": export_cached,
        "encode_items_per_second": len(texts) / max(encode_seconds, 1e-9),
        A.MLM_REPORT: _mlm_metadata(report),
        A.ENCODER_SECONDS: {
            "vocabulary_and_model": load_seconds,
            "mlm": report.seconds if report else 0.0,
            A.ENCODE_PHASE: encode_seconds,
            "export": export_seconds,
            "total": time.monotonic() - started,
            "total_cpu": time.process_time() - cpu_started,
        },
        "bytes": {
            "encoder_saved_model": export.directory_bytes(os.path.join(uri, layout.ENCODER_DIR)),
            "preset": export.directory_bytes(os.path.join(uri, layout.PRESET_DIR)),
        },
    }
    export.write_metadata(uri, metadata)
    logging.info("TextEncoder: done in %.1fs: %s", metadata[A.ENCODER_SECONDS]["total"],
                 metadata[A.MLM_REPORT])
    return metadata

