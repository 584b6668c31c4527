"""Runs the TextEncoder executor on a tiny made-up catalogue (seconds, 2 CPUs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from mtrec.components.text_encoder import artifacts as layout
from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.components.text_encoder.corpus import item_text
from mtrec.components.text_encoder.executor import Executor
from mtrec.components.text_encoder.export import (
    DESCRIPTION_SIGNATURE,
    SIGNATURE,
    load_keras_text_encoder,
    load_metadata,
    load_text_encoder,
)
from mtrec.contracts import artifacts as A
from mtrec.contracts import features
from mtrec.contracts.pipeline import CATALOG_SPLIT, ITEM_CATALOG, ITEM_TEXT_EMBEDDINGS
from mtrec.models.item_text import load_item_text_embeddings

NUM_ITEMS = 60
GENRES = ["action", "comedy", "drama", "horror", "romance", "sci-fi"]
ADJECTIVES = ["dark", "happy", "lost", "silent", "golden", "final", "broken", "wild"]
NOUNS = ["river", "star", "night", "city", "heart", "road", "ghost", "king"]
VERBS = ["hunts", "loves", "escapes", "finds", "fights", "saves"]
# Tiny model + few steps: the whole executor run takes seconds.
TINY = {
    "vocab_size": 500,
    "sequence_length": 32,
    "num_layers": 1,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "pretrain_steps": 80,
    "batch_size": 16,
    "learning_rate": 5e-3,
    "seed": 7,
    "log_every_steps": 40,
}


def make_catalog_rows(n: int = NUM_ITEMS) -> list[dict]:
    """Made-up items whose words repeat enough for a WordPiece vocabulary."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        genres = sorted(rng.choice(GENRES, size=rng.integers(1, 3), replace=False).tolist())
        year = int(rng.integers(1950, 2000))
        rows.append(
            {
                features.ITEM_ID: str(1000 + i),
                features.TITLE: f"The {adjective.title()} {noun.title()} ({year})",
                features.GENRES: genres,
                features.DESCRIPTION: (
                    f"A {adjective} {rng.choice(NOUNS)} {rng.choice(VERBS)} the "
                    f"{rng.choice(ADJECTIVES)} {noun}."
                    if i % 5
                    else ""
                ),
                features.YEAR: year,
            }
        )
    return rows


def write_catalog(root: Path, rows: list[dict]) -> standard_artifacts.Examples:
    """An Examples artifact laid out like ImportExampleGen's output (split 'catalog')."""
    split_dir = root / f"Split-{CATALOG_SPLIT}"
    split_dir.mkdir(parents=True)

    def bytes_feature(values: list[str]) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    path = str(split_dir / "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in rows:
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        features.ITEM_ID: bytes_feature([row[features.ITEM_ID]]),
                        features.TITLE: bytes_feature([row[features.TITLE]]),
                        features.GENRES: bytes_feature(row[features.GENRES]),
                        features.DESCRIPTION: bytes_feature([row[features.DESCRIPTION]]),
                        features.YEAR: tf.train.Feature(
                            int64_list=tf.train.Int64List(value=[row[features.YEAR]])
                        ),
                    }
                )
            )
            writer.write(example.SerializeToString())
    examples = standard_artifacts.Examples()
    examples.uri = str(root)
    examples.split_names = artifact_utils.encode_split_names([CATALOG_SPLIT])
    return examples


def run_executor(tmp: Path, rows: list[dict], **props) -> ItemTextEmbeddings:
    examples = write_catalog(tmp / "catalog", rows)
    output = ItemTextEmbeddings()
    output.uri = str(tmp / "text_embeddings")
    Executor().Do({ITEM_CATALOG: [examples]}, {ITEM_TEXT_EMBEDDINGS: [output]}, props)
    return output


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return make_catalog_rows()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, rows) -> ItemTextEmbeddings:
    return run_executor(tmp_path_factory.mktemp("pretrain"), rows, mode="scratch", **TINY)


def _text(row: dict) -> str:
    return item_text(
        row[features.TITLE], row[features.GENRES], row[features.DESCRIPTION], row[features.YEAR]
    )


def test_outputs_layout_and_properties(pretrained, rows):
    uri = Path(pretrained.uri)
    for name in (
        layout.VOCAB_FILE,
        layout.ITEM_IDS_FILE,
        layout.EMBEDDINGS_FILE,
        layout.DESCRIPTION_EMBEDDINGS_FILE,
        layout.METADATA_FILE,
    ):
        assert (uri / name).is_file(), name
    assert (uri / layout.ENCODER_DIR / "saved_model.pb").is_file()
    # The weights once per format: the Keras model is rebuilt from the preset.
    assert (uri / layout.PRESET_DIR / "model.weights.h5").is_file()
    assert not list(uri.glob("*.keras"))
    vocab = (uri / layout.VOCAB_FILE).read_text().splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    item_ids, embeddings = load_item_text_embeddings(str(uri))
    assert item_ids == sorted(r[features.ITEM_ID] for r in rows)
    assert embeddings.dtype == np.float32
    assert embeddings.shape == (NUM_ITEMS, TINY["hidden_dim"])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(e, 5)) for e in embeddings}) > NUM_ITEMS // 2  # not collapsed

    props = pretrained.mlmd_artifact.custom_properties
    assert props["embedding_dim"].int_value == TINY["hidden_dim"]
    assert props["num_items"].int_value == NUM_ITEMS
    assert props["mode"].string_value == "scratch"
    assert props[A.PRETRAIN_SECONDS].double_value > 0
    metadata = load_metadata(str(uri))
    assert metadata["embedding_dim"] == TINY["hidden_dim"]
    assert metadata["mlm"]["steps"] == TINY["pretrain_steps"]


def test_mlm_pretraining_improves(pretrained):
    mlm = load_metadata(pretrained.uri)["mlm"]
    assert mlm["loss_after"] < mlm["loss_before"] - 0.5, mlm
    assert mlm["accuracy_after"] > mlm["accuracy_before"], mlm


def test_keras_model_matches_embeddings(pretrained, rows):
    """The saved Keras 3 model + preset tokenizer reproduce embeddings.npy."""
    from mtrec.components.text_encoder.tokenization import make_packer

    model, tokenizer = load_keras_text_encoder(pretrained.uri)
    item_ids, embeddings = load_item_text_embeddings(pretrained.uri)
    by_id = {r[features.ITEM_ID]: r for r in rows}
    texts = [_text(by_id[i]) for i in item_ids[:8]]
    token_ids, mask = make_packer(tokenizer, TINY["sequence_length"])(tokenizer(texts))
    token_ids = np.asarray(token_ids, dtype=np.int32)
    out = model.predict(
        {
            "token_ids": token_ids,
            "segment_ids": np.zeros_like(token_ids),
            "padding_mask": np.asarray(mask, dtype=np.int32),
        },
        verbose=0,
    )
    np.testing.assert_allclose(out, embeddings[:8], atol=1e-5)


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    uri, texts = sys.argv[1], json.loads(sys.argv[2])  # {signature: [text, ...]}
    model = tf.saved_model.load(uri + "/encoder")
    out = {name: model.signatures[name](text=tf.constant(batch))["embedding"].numpy()
           for name, batch in texts.items()}
    np.savez(sys.argv[3], **out)
    banned = [m for m in sys.modules if m.split(".")[0] in ("mtrec", "keras_nlp", "keras_hub")]
    assert not banned, banned
    """
)


def encode_in_fresh_process(uri: str, texts: dict[str, list[str]], tmp_path
                            ) -> dict[str, np.ndarray]:
    """The artifact's encoder SavedModel run by FRESH_PROCESS_SCRIPT (TF + TF Text only):
    {signature: vectors} for {signature: texts}."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    out_path = tmp_path / "out.npz"
    subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, uri, json.dumps(texts), str(out_path)],
        check=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    with np.load(out_path) as out:
        return dict(out)


def catalogue_texts(uri: str, rows: list[dict]) -> list[str]:
    """The item text of every embedding row of the artifact at `uri`, in its order."""
    item_ids, _ = load_item_text_embeddings(uri)
    return [_text(row) for row in _rows_of(item_ids, rows)]


def assert_fresh_process_matches(uri: str, rows: list[dict], tmp_path) -> None:
    """A few catalogue texts through the exported encoder's `serving_default`, and their
    descriptions as they are through its `description` signature, in a fresh process
    = the artifact's two tables (what a client sends embed_new_item); items without
    a description have zero rows there."""
    item_ids, embeddings = load_item_text_embeddings(uri)
    descriptions = np.load(Path(uri) / layout.DESCRIPTION_EMBEDDINGS_FILE)
    said = [row[features.DESCRIPTION] for row in _rows_of(item_ids, rows)]
    picks = [0, 3, 17, NUM_ITEMS - 1]
    described = [i for i in picks if said[i]]
    assert 0 < len(described) < len(picks)  # both kinds among the picks
    texts = [_text(r) for r in _rows_of([item_ids[i] for i in picks], rows)]
    out = encode_in_fresh_process(uri, {SIGNATURE: texts, DESCRIPTION_SIGNATURE: [
        said[i] for i in described]}, tmp_path)
    np.testing.assert_allclose(out[SIGNATURE], embeddings[picks], atol=1e-5)
    np.testing.assert_allclose(out[DESCRIPTION_SIGNATURE], descriptions[described], atol=1e-5)
    has = np.array([bool(d) for d in said])
    assert not descriptions[~has].any()
    np.testing.assert_allclose(np.linalg.norm(descriptions[has], axis=1), 1.0, atol=1e-5)


def _rows_of(item_ids: list[str], rows: list[dict]) -> list[dict]:
    by_id = {r[features.ITEM_ID]: r for r in rows}
    return [by_id[i] for i in item_ids]


def test_saved_model_in_fresh_process_matches_embeddings(pretrained, rows, tmp_path):
    assert_fresh_process_matches(pretrained.uri, rows, tmp_path)


def saved_weight_count(uri: str) -> int:
    """Float values in the encoder SavedModel's checkpoint (every saved variable)."""
    prefix = os.path.join(uri, layout.ENCODER_DIR, "variables", "variables")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    return sum(int(np.prod(shape)) for key, shape in shapes.items() if key.endswith("VALUE"))


def test_saved_model_holds_each_weight_once(pretrained):
    """ExportArchive.track(model) used to save the Keras wrappers too: 2x the weights."""
    assert saved_weight_count(pretrained.uri) == load_metadata(pretrained.uri)["encoder_params"]


def test_descriptions_are_packed_to_their_own_length(pretrained):
    """The `description` signature reads the first description_length tokens ([CLS] and
    [SEP] included): words past them change nothing, while the text signature, packed
    to the longer sequence_length, still sees them."""
    signatures = load_text_encoder(pretrained.uri).signatures
    assert load_metadata(pretrained.uri)["description_sequence_length"] == 16  # the default
    _, tokenizer = load_keras_text_encoder(pretrained.uri)
    words = ("a dark river hunts the lost king " * 6).split()
    head = next(" ".join(words[:n]) for n in range(len(words))  # 17+ word pieces: past 14
                if np.asarray(tokenizer(" ".join(words[:n]))).size >= 17)
    texts = tf.constant([head, head + " golden wild star"])
    described = signatures[DESCRIPTION_SIGNATURE](text=texts)["embedding"].numpy()
    np.testing.assert_allclose(described[0], described[1], atol=1e-6)
    full = signatures[SIGNATURE](text=texts)["embedding"].numpy()
    assert not np.allclose(full[0], full[1], atol=1e-3)


def test_load_text_encoder_in_process(pretrained):
    """Unseen/odd texts: empty string and one longer than sequence_length."""
    encoder = load_text_encoder(pretrained.uri)
    texts = tf.constant(["", "the lost river | drama |", "word " * 100])
    out = encoder.signatures["serving_default"](text=texts)["embedding"].numpy()
    assert out.shape == (3, TINY["hidden_dim"])
    assert np.all(np.isfinite(out))


def test_preset_mode_with_local_preset(tmp_path, rows):
    """A tiny preset saved by the test stands in for a downloaded keras-hub one."""
    import keras_nlp

    from mtrec.components.text_encoder.tokenization import build_vocabulary, make_tokenizer

    vocabulary = build_vocabulary([_text(r) for r in rows], 500)
    tokenizer = make_tokenizer(vocabulary)
    backbone = keras_nlp.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=24,
    )
    preset_dir = tmp_path / "preset"
    backbone.save_to_preset(str(preset_dir))
    tokenizer.save_to_preset(str(preset_dir))

    output = run_executor(
        tmp_path,
        rows,
        mode="preset",
        preset_dir=str(preset_dir),
        fine_tune_steps=30,
        sequence_length=64,
        batch_size=16,
        learning_rate=5e-3,
        seed=3,
        log_every_steps=10,
    )
    metadata = load_metadata(output.uri)
    assert metadata["mode"] == "preset"
    assert metadata["sequence_length"] == 24  # clipped to the preset's maximum
    assert metadata["mlm"]["steps"] == 30
    assert metadata["mlm"]["loss_after"] < metadata["mlm"]["loss_before"]
    item_ids, embeddings = load_item_text_embeddings(output.uri)
    assert embeddings.shape == (NUM_ITEMS, 8)
    assert (Path(output.uri) / layout.VOCAB_FILE).read_text().splitlines() == vocabulary
    assert output.mlmd_artifact.custom_properties["mode"].string_value == "preset"


def test_bad_exec_properties_fail_fast(tmp_path, rows):
    with pytest.raises(ValueError, match="preset_dir"):
        run_executor(tmp_path, rows[:5], mode="preset")
