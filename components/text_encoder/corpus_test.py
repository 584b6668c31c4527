"""item_text (Python) and item_text_tf (TF) must produce byte-identical strings."""

from __future__ import annotations

import pytest
import tensorflow as tf

from mtrec.components.text_encoder.corpus import item_text, item_text_tf

CASES = [
    ("Toy Story (1995)", ["Animation", "Children's", "Comedy"], "A cowboy doll is jealous.", 1995),
    ("GoldenEye (1995)", ["Action"], "", 1995),
    ("", [], "", 0),
    ("  Spaced\tOut \n Title  ", ["  Sci-Fi ", "", "Drama"], "  lots   of\r\nspace  ", 0),
    ("Café Noir À L'ÉCOLE", ["Film-Noir"], "ÜBER straße ΟΔΟΣ İstanbul", 2001),
    ("No genres", [], "desc", -5),
    ("Pipe | in | title", ["A|B"], "x", 12),
]


def test_item_text_format():
    assert item_text("Toy Story (1995)", ["Animation", "Comedy"], "", 1995) == (
        "toy story (1995) | animation comedy | 1995 |"
    )
    assert item_text(" A ", ["B"], " C ") == "a | b | | c"
    assert item_text(" A ", ["B"], " C ", -1) == "a | b | | c"


@pytest.mark.parametrize("kind", ["ragged", "sparse", "dense"])
def test_item_text_tf_matches_python(kind: str):
    titles = tf.constant([c[0] for c in CASES])
    descriptions = tf.constant([c[2] for c in CASES])
    ragged = tf.ragged.constant([c[1] for c in CASES], dtype=tf.string)
    genres = {
        "ragged": ragged,
        "sparse": ragged.to_sparse(),
        "dense": ragged.to_tensor(default_value=""),
    }[kind]
    years = tf.constant([c[3] for c in CASES], tf.int64)
    got = item_text_tf(titles, genres, descriptions, years).numpy().tolist()
    want = [item_text(*c).encode("utf-8") for c in CASES]
    assert got == want


def test_item_text_tf_in_graph():
    fn = tf.function(
        item_text_tf,
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.RaggedTensorSpec([None, None], tf.string),
            tf.TensorSpec([None], tf.string),
        ],
    )
    out = fn(tf.constant(["T"]), tf.ragged.constant([["G1", "G2"]]), tf.constant(["D"]))
    assert out.numpy().tolist() == [item_text("T", ["G1", "G2"], "D").encode()]
