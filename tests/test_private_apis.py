"""Pins for the private TF/TFX APIs mtrec uses where no public one exists.

Each test fails on an upgrade that moves the API, instead of mtrec silently
falling back (the serving fast path) or silently changing what it saves.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import conversion
from tf_keras.src.utils import losses_utils
from tfx.components import Trainer
from tfx.dsl.components.base import base_beam_executor, base_component
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.proto import trainer_pb2
from tfx.types import channel_utils, standard_artifacts
from tfx.utils import dependency_utils

from mtrec.components.trainer.component import CatalogTrainer
from mtrec.models.autograph_rules import skip_tf_keras
from mtrec.models.keras_saving import without_layer_traces
from mtrec.models.model import MultiTaskModel  # importing it applies skip_tf_keras
from mtrec.pipeline import beam_portable, configs
from mtrec.pipeline.tfx_packaging import without_tfx_package
from mtrec.serving.direct_call import DirectCall, eager_tensor, host_cpu_device


def test_serving_direct_call_still_applies_to_a_loaded_signature(tmp_path):
    """serving/direct_call.py's fast path reads ConcreteFunction._captured_inputs and
    ._inference_function and calls tensorflow.python.eager.execute; build() returns
    None (the slow public path) if they move, which this catches."""
    module = tf.Module()
    module.w = tf.Variable([2.0, 3.0])
    module.f = tf.function(lambda x: {"y": x * module.w},
                           input_signature=[tf.TensorSpec([2], tf.float32)])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.f})
    fn = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    direct = DirectCall.build(fn, [tf.float32])
    assert direct is not None
    (out,) = direct([tf.constant([1.0, 2.0])])
    np.testing.assert_allclose(out.numpy(), [2.0, 6.0])


def test_request_tensors_are_built_on_the_host_cpu_by_name():
    """serving/direct_call.py builds request tensors with the raw EagerTensor constructor
    and the host CPU's full device name (4x cheaper than the empty default name): same
    values and device as tf.constant, and tf.constant's error for what it refuses."""
    device = host_cpu_device()
    assert device.endswith("/device:CPU:0") and device.startswith("/job:")
    for arr, dtype in (
        (np.array([b"u1", b"\xff"], dtype=object), tf.string),
        (np.array([[1, 2], [3, 4]], dtype=np.int32), tf.int32),
        (np.array(7, dtype=np.int64), tf.int64),
    ):
        got = eager_tensor(arr, dtype, dtype.as_datatype_enum, device)
        want = tf.constant(arr, dtype=dtype)
        assert got.dtype == dtype and got.device == want.device
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises((TypeError, ValueError)):  # not a string: tf.constant's own message
        eager_tensor(np.array([object()], dtype=object), tf.string, tf.string.as_datatype_enum,
                     device)


def test_keras_model_trackable_children_takes_save_type():
    """models/model.py overrides Model._trackable_children(save_type) to leave the
    optimizer out of SavedModels; Keras offers no public switch for that."""
    params = inspect.signature(tf.keras.Model._trackable_children).parameters
    assert "save_type" in params


def _saved_functions(path) -> int:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    return len(proto.meta_graphs[0].object_graph_def.concrete_functions)


def test_without_layer_traces_leaves_out_only_the_keras_layer_calls(tmp_path):
    """models/keras_saving.py: inside the scope, tf.saved_model.save writes a module
    holding a tf_keras model with its signature and weights but none of the layers'
    own traced calls; outside it they are written (the scope is what changes it)."""
    module = tf.Module()
    module.model = tf.keras.Sequential([tf.keras.layers.Dense(3), tf.keras.layers.Dense(1)])
    module.model.build((None, 2))
    module.f = tf.function(lambda x: {"y": module.model(x)},
                           input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    x = tf.constant([[1.0, 2.0], [3.0, -1.0]])
    signatures = {"serving_default": module.f}
    tf.saved_model.save(module, str(tmp_path / "traces"), signatures=signatures)
    with without_layer_traces():
        tf.saved_model.save(module, str(tmp_path / "lean"), signatures=signatures)
    assert _saved_functions(tmp_path / "lean") < _saved_functions(tmp_path / "traces")
    lean = tf.saved_model.load(str(tmp_path / "lean")).signatures["serving_default"]
    np.testing.assert_array_equal(lean(x=x)["y"].numpy(), module.f(x)["y"].numpy())


def test_catalog_trainer_keeps_the_stock_trainer_properties():
    """CatalogTrainer skips Trainer.__init__ (which would build the stock spec) and
    calls BaseComponent's; it must still end up with what Trainer.__init__ sets."""
    def channel(artifact_type):
        return channel_utils.as_channel([artifact_type()])

    common = dict(
        examples=channel(standard_artifacts.Examples),
        transform_graph=channel(standard_artifacts.TransformGraph),
        schema=channel(standard_artifacts.Schema),
        run_fn="m.run_fn",
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config={"a": 1},
    )
    stock, ours = Trainer(**common), CatalogTrainer(**common)
    assert Trainer.__mro__[1] is base_component.BaseComponent
    # The stock one also carries module_file=None (unset); every set value matches.
    assert ours.exec_properties == {
        k: v for k, v in stock.exec_properties.items() if v is not None
    }
    assert set(ours.outputs) == set(stock.outputs)


def test_autograph_skips_tf_keras_through_its_private_rule_list():
    """models/autograph_rules.py appends DoNotConvert("tf_keras") to AutoGraph's private
    CONVERSION_RULES (models/model.py applies it on import). Pinned: the list and the
    rule class still exist, the rule is in force once, and a tf_keras function is then
    run as-is while mtrec's own code is still converted."""
    skip_tf_keras()  # idempotent
    rules = [r for r in autograph_config.CONVERSION_RULES
             if isinstance(r, autograph_config.DoNotConvert) and r.matches("tf_keras")]
    assert len(rules) == 1
    assert conversion.is_allowlisted(losses_utils.squeeze_or_expand_dimensions)
    assert not conversion.is_allowlisted(MultiTaskModel.compute_loss)


class _BeamExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        raise NotImplementedError


def _executor_args(beam_args: list[str]) -> list[str]:
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args))
    return _BeamExecutor(context)._beam_pipeline_args


def test_tfx_packages_itself_for_beam_workers_only_outside_a_local_run(monkeypatch):
    """pipeline/tfx_packaging.py swaps tfx.utils.dependency_utils'
    make_beam_dependency_flags, the hook BaseBeamExecutor.__init__ calls with the
    Beam args. The build it leads to (49 MB copied to /tmp, an sdist built) is
    replaced by a recorder here: TFX must still reach it outside the scope and for
    a non-local runner, never for a local one, and the hook comes back on exit."""
    built = []
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package",
                        lambda: built.append(1) or "/nonexistent/tfx_ephemeral-0.tar.gz")
    hook = dependency_utils.make_beam_dependency_flags
    local = list(configs.LOCAL_BEAM_ARGS)

    assert "--extra_package=/nonexistent/tfx_ephemeral-0.tar.gz" in _executor_args(local)
    assert len(built) == 1
    for args in (local, list(configs.IN_PROCESS_BEAM_ARGS)):
        with without_tfx_package(args) as skipped:
            got = _executor_args(args)
        assert skipped and got[:len(args)] == args
        assert not any(a.startswith("--extra_package") for a in got)
    assert len(built) == 1 and dependency_utils.make_beam_dependency_flags is hook

    portable = beam_portable.beam_args(5000)
    with without_tfx_package(portable) as skipped:
        assert not skipped and "--extra_package" in " ".join(_executor_args(portable))
    assert len(built) == 2


def test_kfp_entrypoint_parses_flags_as_tfx_does():
    """pipeline/kfp_entrypoint.py runs TFX's KFP v2 container entrypoint with its
    private `_parse_flags`: TFX's three flags, the rest as the Beam args."""
    argv = ["--executor_class_path", "a.B", "--json_serialized_invocation_args", "{}",
            "--json_serialized_inputs_spec_args", "{}", *configs.LOCAL_BEAM_ARGS]
    args, beam_args = kubeflow_v2_run_executor._parse_flags(argv)
    assert (args.executor_class_path, args.json_serialized_invocation_args) == ("a.B", "{}")
    assert beam_args == list(configs.LOCAL_BEAM_ARGS)
    assert inspect.signature(kubeflow_v2_run_executor.main).parameters.keys() == {"parsed_argv"}
