"""all-MiniLM-L6-v2 in keras-hub: reference equality, executor, serving, missing package.

The first test in a fresh cache converts the checkpoint (~10 s); every later
load reads the cached preset (minilm.py). The catalogue is executor_test's
60 made-up items, so encoding takes a couple of seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mtrec.components.text_encoder import artifacts as layout
from mtrec.components.text_encoder import minilm
from mtrec.components.text_encoder.executor_test import (
    NUM_ITEMS,
    assert_fresh_process_matches,
    catalogue_texts,
    make_catalog_rows,
    run_executor,
    saved_weight_count,
)
from mtrec.components.text_encoder.export import (
    OUTPUT_NAME,
    TextEncoderFunction,
    load_metadata,
    load_text_encoder,
)
from mtrec.models.item_text import load_item_text_embeddings

REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "minilm_reference.json"


def test_renamed_key_matches_keras_hub_converter_names():
    assert minilm.renamed_key("embeddings.LayerNorm.weight") == "bert.embeddings.LayerNorm.gamma"
    assert (
        minilm.renamed_key("encoder.layer.3.output.LayerNorm.bias")
        == "bert.encoder.layer.3.output.LayerNorm.beta"
    )
    assert (
        minilm.renamed_key("encoder.layer.0.attention.self.query.weight")
        == "bert.encoder.layer.0.attention.self.query.weight"
    )
    assert minilm.renamed_key("bert.pooler.dense.bias") == "bert.pooler.dense.bias"


def test_missing_package_names_it(monkeypatch, tmp_path):
    """Without the package: a clear error naming it, before any model work."""
    monkeypatch.setitem(sys.modules, minilm.MODULE, None)  # import now raises ImportError
    with pytest.raises(minilm.MissingModelPackageError, match=minilm.PACKAGE) as err:
        minilm.checkpoint_dir()
    assert "--no-deps" in str(err.value)
    with pytest.raises(minilm.MissingModelPackageError, match=minilm.PACKAGE):
        run_executor(tmp_path, make_catalog_rows(5), mode="pretrained")


@pytest.fixture(scope="module")
def minilm_encoder():
    from mtrec.components.text_encoder import encoder

    preset, _ = minilm.preset_dir()
    backbone, tokenizer = encoder.load_preset(str(preset))
    assert backbone.count_params() == 22_713_216
    model = encoder.build_encoder_model(backbone)
    return TextEncoderFunction(tokenizer, model, minilm.MAX_SEQUENCE_LENGTH)


def test_port_matches_reference_implementation(minilm_encoder):
    """Our keras-hub port vs transformers + PyTorch (scripts/minilm_reference.py): 1e-4."""
    from mtrec.components.text_encoder.tokenization import pack_sequences, tokenize

    reference = json.loads(REFERENCE.read_text())
    sentences = reference["sentences"]
    want = np.array(reference["vectors"], dtype=np.float64)
    tokenizer = minilm_encoder.tokenizer
    tokens = tokenize(tokenizer, sentences)
    packed = pack_sequences(tokenizer, tokens, minilm.MAX_SEQUENCE_LENGTH)
    assert [p.tolist() for p in packed] == reference["token_ids"]  # same WordPiece ids

    for got in (minilm_encoder.encode(sentences), minilm_encoder.encode_packed(packed, 4)):
        cosine = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
        assert cosine.min() > 1 - 1e-4, cosine
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The published sentence-transformers example for this model.
    assert float(want[0] @ want[1]) == pytest.approx(0.755, abs=5e-4)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return make_catalog_rows()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, rows):
    return run_executor(tmp_path_factory.mktemp("minilm"), rows, mode="pretrained")


def test_pretrained_executor_metadata_and_encoding_cache(pretrained, rows, tmp_path):
    metadata = load_metadata(pretrained.uri)
    assert metadata["encoder_name"] == minilm.MODEL_NAME
    assert metadata["encoder_params"] == 22_713_216
    assert metadata["embedding_dim"] == 384
    assert metadata["mlm"]["steps"] == 0
    longest = metadata["text_tokens"]["max"] + 2
    assert metadata["sequence_length"] == -(-longest // 8) * 8  # auto: fits the longest
    assert metadata["num_truncated_texts"] == 0
    # Each weight saved once (export.TextEncoderFunction.export): 4 bytes each + the graph.
    assert saved_weight_count(pretrained.uri) == 22_713_216
    assert metadata["bytes"]["encoder_saved_model"] < 4 * 22_713_216 + 8_000_000
    props = pretrained.mlmd_artifact.custom_properties
    assert props["encoder_name"].string_value == minilm.MODEL_NAME

    again = run_executor(tmp_path, rows, mode="pretrained")
    assert load_metadata(again.uri)["encode_cached"] is True
    assert load_metadata(again.uri)["export_cached"] is True
    _, first = load_item_text_embeddings(pretrained.uri)
    _, second = load_item_text_embeddings(again.uri)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(  # the descriptions' table came from its own cache entry
        *(np.load(Path(a.uri) / layout.DESCRIPTION_EMBEDDINGS_FILE) for a in (pretrained, again)))
    # The encoder models came from the export cache: they still encode these items.
    texts = tf.constant(catalogue_texts(again.uri, rows))
    served = load_text_encoder(again.uri).signatures["serving_default"](text=texts)
    np.testing.assert_allclose(served["embedding"].numpy(), second, atol=1e-5)


def test_pretrained_saved_model_in_fresh_process_matches(pretrained, rows, tmp_path):
    """assets.extra/text_encoder's content: TF + tensorflow_text only, same vectors."""
    assert_fresh_process_matches(pretrained.uri, rows, tmp_path)


def test_encode_packed_equals_full_padding(minilm_encoder):
    """Length-sorted, per-batch padding gives the serving function's vectors."""
    from mtrec.components.text_encoder.tokenization import pack_sequences, tokenize

    texts = ["a", "the dark river | drama | 1990 | a long " + "story " * 30, "", "b c d"]
    packed = pack_sequences(minilm_encoder.tokenizer, tokenize(minilm_encoder.tokenizer, texts),
                            minilm.MAX_SEQUENCE_LENGTH)  # fmt: skip
    full = minilm_encoder.fn(tf.constant(texts))[OUTPUT_NAME].numpy()
    np.testing.assert_allclose(minilm_encoder.encode_packed(packed, 2), full, atol=1e-5)


def test_run_summary_names_the_encoder(pretrained):
    """`mtrec run`'s summary line: encoder name, parameter count, encoding time."""
    from mtrec.run_state import NodeRun
    from mtrec.summary import collect, render

    node = NodeRun("TextEncoder", "COMPLETE", {"item_text_embeddings": [pretrained.mlmd_artifact]})
    summary = collect({"TextEncoder": node})
    assert summary["text_encoder"]["name"] == minilm.MODEL_NAME
    line = next(x for x in render(summary).splitlines() if x.startswith("text encoder:"))
    assert minilm.MODEL_NAME in line and "22,713,216 params" in line, line
    assert f"encoded {NUM_ITEMS} items in" in line, line
