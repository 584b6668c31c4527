"""A k outside 1..catalogue is refused by the k checks, in the contract's words, every time.

`mtrec query` recognises the refusal of a k past the catalogue by its text
(signatures.K_PAST_CATALOGUE) and then asks for the whole catalogue. tf.function
runs a graph's Assert ops but does not order them before the other ops, so a top_k
that does not wait for them races them and, on a busy machine, sometimes fails
first with TF's own "input must have at least k columns": the synthetic stand-in
model did (fresh-clone CI, 4-5 of 40-150 calls under load). The tests are
structural, so they fail without depending on the machine's load: every top_k
must wait for both k checks.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from mtrec.contracts import signatures as S
from mtrec.models.serving_module import ServingModule
from mtrec.serving.client import catalogue_size
from mtrec.serving.signature import clean_tf_message
from tests import _serving_support as support
from tests.test_cold_popularity import module_with

# The k checks' Assert nodes, as tf.debugging names them (models/serving_ops.checked_size;
# benchmarks/synthetic_model.py).
K_ASSERTS = {"assert_positive/assert_less/Assert/Assert", "assert_less_equal/Assert/Assert"}


def _waits_for(nodes: dict, name: str) -> set[str]:
    """Every name `name` waits for in one function body: its nodes, and the body's
    arguments (names that are not nodes), through data and control inputs."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        base = stack.pop().lstrip("^").split(":")[0]
        if base not in seen:
            seen.add(base)
            stack.extend(nodes[base].input if base in nodes else ())
    return seen


def _calls(node: tf.compat.v1.NodeDef) -> tuple[list[str], list[str]]:
    """(the functions a node runs, its inputs that become their arguments, in order)."""
    data = [i for i in node.input if not i.startswith("^")]
    if node.op in ("If", "StatelessIf"):
        return [node.attr["then_branch"].func.name, node.attr["else_branch"].func.name], data[1:]
    if node.op in ("Case", "StatelessCase"):  # tf.switch_case (models/light_users.either)
        return [f.name for f in node.attr["branches"].list.func], data[1:]
    if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
        return [node.attr["f"].func.name], data
    return [], []


def _unchecked_top_ks(graph: tf.compat.v1.GraphDef) -> tuple[int, list[str]]:
    """(how many TopKV2 ops there are, those that do not wait for both k checks), in the
    graph and in every function it runs. A top_k in a tf.cond branch waits for what its
    branch arguments wait for outside (lowered to Switch/Merge, each op waits only for
    its own inputs), so the checks are followed through the calls' arguments."""
    library = {f.signature.name: f for f in graph.library.function}
    count, unchecked = 0, []

    def walk(body: list, checked_args: set[str]) -> None:
        nonlocal count
        nodes = {n.name: n for n in body}

        def checked(name: str) -> bool:
            waits = _waits_for(nodes, name)
            return K_ASSERTS.issubset(waits) or bool(waits & checked_args)

        for node in body:
            if node.op == "TopKV2":
                count += 1
                if not checked(node.name):
                    unchecked.append(node.name)
            functions, inputs = _calls(node)
            for name in functions:
                called = library[name]
                names = [a.name for a in called.signature.input_arg]
                passed = {names[i] for i, x in enumerate(inputs) if checked(x)}
                walk(list(called.node_def), passed)

    walk(list(graph.node), set())
    return count, unchecked


def test_the_stand_in_models_top_k_waits_for_the_k_checks():
    recommend = tf.saved_model.load(support.primary_model_dir()).signatures[S.RECOMMEND]
    count, unchecked = _unchecked_top_ks(recommend.graph.as_graph_def())
    assert count == 1 and not unchecked


@pytest.fixture(scope="module")
def module(transformed_synthetic) -> ServingModule:
    """As exported: the per-user tables and the answer cache (recommend's tf.cond) on."""
    return module_with(transformed_synthetic, {}, cache_users=True)


@pytest.mark.parametrize("signature", [S.RECOMMEND, S.RECOMMEND_FROM_ITEMS, S.RETRIEVE])
def test_every_top_k_of_the_product_waits_for_the_k_checks(module, signature):
    graph = getattr(module, signature).get_concrete_function().graph.as_graph_def()
    count, unchecked = _unchecked_top_ks(graph)
    assert count >= (1 if signature == S.RETRIEVE else 2) and not unchecked  # + the re-rank's


def test_a_k_past_the_catalogue_is_refused_in_the_contracts_words(module):
    n = int(tf.size(module.catalog_ids))
    for k, words in ((n + 1, S.K_PAST_CATALOGUE), (0, "k must be a positive integer")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=words):
            module.recommend(user_id=tf.constant([b"1"]), k=tf.constant(k))
        with pytest.raises(tf.errors.InvalidArgumentError, match=words):
            module.retrieve(user_id=tf.constant([b"1"]), k=tf.constant(k))


def test_the_refusal_reads_as_a_sentence_with_the_values(module):
    """REST and gRPC answered a bad k with TF's assertion text ("assertion failed: [k must
    be a positive integer] [Condition x > 0 did not hold element-wise:] [x (k:0) = ] [0]");
    the server now says what was wrong and the values, and the client still reads the
    catalogue's size from it (and from TF Serving's raw text)."""
    n = int(tf.size(module.catalog_ids))
    expected = {0: "k must be a positive integer (k = 0)",
                n + 1: f"{S.K_PAST_CATALOGUE} (k = {n + 1}, limit = {n})"}
    for k, words in expected.items():
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            module.recommend(user_id=tf.constant([b"1"]), k=tf.constant(k))
        assert clean_tf_message(raised.value.message) == words
        assert catalogue_size(words) == (n if k else None)
        assert catalogue_size(raised.value.message) == (n if k else None)
