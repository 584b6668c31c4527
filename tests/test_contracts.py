"""The contracts that restate TFX's own names still match TFX (they break on an upgrade)."""

from __future__ import annotations

import ast
from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.saved_model import constants, pywrap_saved_model
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.compiler import constants as tfx_constants
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs

from mtrec.contracts import artifacts as A
from mtrec.contracts import features as F
from mtrec.contracts import metrics
from mtrec.contracts import pipeline as P
from mtrec.contracts import signatures as S
from mtrec.pipeline.local_runner import curated_schema_path

CONTRACTS = Path(P.__file__).resolve().parent


def test_channel_keys_are_tfx_standard_keys():
    specs = standard_component_specs
    assert (P.EXAMPLES, P.TRANSFORM_GRAPH, P.TRANSFORMED_EXAMPLES) == (
        specs.EXAMPLES_KEY, specs.TRANSFORM_GRAPH_KEY, specs.TRANSFORMED_EXAMPLES_KEY)
    assert (P.MODEL, P.MODEL_RUN, P.BASELINE_MODEL) == (
        specs.MODEL_KEY, specs.MODEL_RUN_KEY, specs.BASELINE_MODEL_KEY)
    assert (P.BLESSING, P.EVALUATION, P.PUSHED_MODEL) == (
        specs.BLESSING_KEY, specs.EVALUATION_KEY, specs.PUSHED_MODEL_KEY)
    assert P.ANOMALIES == specs.ANOMALIES_KEY
    assert (P.STATISTICS, P.SCHEMA) == (specs.STATISTICS_KEY, specs.SCHEMA_KEY)
    assert P.INPUT_BASE == specs.INPUT_BASE_KEY  # the ExampleGens' exec property (mtrec prune)


def test_pushed_properties_are_the_tfx_pushers():
    # Private constants: TFX has no public name for them; the summary reads them.
    assert P.PUSHED == pusher_executor._PUSHED_KEY
    assert P.PUSHED_DESTINATION == pusher_executor._PUSHED_DESTINATION_KEY


def test_mlmd_context_types_are_tfxs():
    assert P.RUN_CONTEXT_TYPE == tfx_constants.PIPELINE_RUN_CONTEXT_TYPE_NAME
    assert P.NODE_CONTEXT_TYPE == tfx_constants.NODE_CONTEXT_TYPE_NAME


def test_split_dir_name_is_tfx_layout():
    artifact = standard_artifacts.Examples()
    artifact.uri = "/a"
    artifact.split_names = artifact_utils.encode_split_names([P.TRAIN_SPLIT])
    assert artifact_utils.get_split_uri([artifact], P.TRAIN_SPLIT) == (
        "/a/" + P.split_dir_name(P.TRAIN_SPLIT))


def test_serving_default_is_tfs_default_signature_key():
    assert S.SERVING_DEFAULT == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


def test_signature_inputs_named_as_the_raw_features():
    # embed_new_item takes raw features; user_interest answers with genre names.
    assert (S.USER_ID, S.ITEM_ID, S.GENRES) == (F.USER_ID, F.ITEM_ID, F.GENRES)


def test_saved_model_layout_is_tfs():
    # Private modules (imported above): TF has no public name for these two.
    assert A.SAVED_MODEL_FILE == tf.saved_model.SAVED_MODEL_FILENAME_PB
    assert A.SAVED_MODEL_TEXT_FILE == tf.saved_model.SAVED_MODEL_FILENAME_PBTXT
    assert A.EXTRA_ASSETS_DIR == constants.EXTRA_ASSETS_DIRECTORY
    assert A.FINGERPRINT_FILE == pywrap_saved_model.constants.FINGERPRINT_FILENAME


def test_metric_names_by_hand():
    assert metrics.at(metrics.HIT_RATE, 100) == "hit_rate@100"
    assert (metrics.NDCG_LIFT, metrics.NDCG_CHANGE) == ("ndcg@10_lift", "ndcg@10_change")
    assert metrics.RANKING_METRICS == ("ndcg@10", "precision@10", "recall@10")
    assert metrics.BEYOND_ACCURACY_METRICS == ("coverage@10", "novelty@10")


def test_contract_modules_import_nothing_but_future():
    for path in CONTRACTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                raise AssertionError(f"{path.name} imports {[a.name for a in node.names]}")
            if isinstance(node, ast.ImportFrom):
                assert node.module == "__future__", f"{path.name} imports {node.module}"


def test_the_curated_schema_holds_the_features_contracts_name():
    """schema.pbtxt restates every raw feature with its type; only end-to-end runs would
    have caught a rename in contracts/features.py that the schema did not follow."""
    schema = text_format.Parse(Path(curated_schema_path()).read_text(), schema_pb2.Schema())
    features = {f.name: f for f in schema.feature}
    assert sorted(features) == sorted(F.RAW_FEATURES)
    kinds = {name: schema_pb2.FeatureType.Name(f.type) for name, f in features.items()}
    assert kinds == {name: "FLOAT" if name in F.FLOAT_FEATURES else "INT"
                     if name in F.INT_FEATURES else "BYTES" for name in F.RAW_FEATURES}
    fixed = {name for name, f in features.items() if f.HasField("shape")}
    assert fixed == set(F.RAW_FEATURES) - set(F.LIST_FEATURES)  # lists: any length
    rating = features[F.RATING].float_domain
    assert (rating.min, rating.max) == (F.MIN_RATING, F.MAX_RATING)
