"""Pins for the private TF/TFX APIs mtrec uses where no public one exists.

Each test fails on an upgrade that moves the API, instead of mtrec silently
falling back (the serving fast path) or silently changing what it saves.
"""

from __future__ import annotations

import inspect
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import conversion
from tensorflow.python.util import lazy_loader
from tf_keras.src.utils import losses_utils
from tfx.components import Trainer
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.pusher import executor as pusher_executor
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_beam_executor, base_component, base_executor
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import launcher
from tfx.proto import trainer_pb2
from tfx.types import channel_utils, standard_artifacts
from tfx.utils import dependency_utils

from mtrec import console
from mtrec._env import KerasVersionError, ensure_legacy_keras
from mtrec.components.trainer.component import CatalogTrainer
from mtrec.components.trainer.executor import Executor as TrainerExecutor
from mtrec.components.trainer.vertex import VertexExecutor
from mtrec.models.autograph_rules import skip_tf_keras
from mtrec.models.keras_saving import without_layer_traces
from mtrec.models.model import MultiTaskModel  # importing it applies skip_tf_keras
from mtrec.pipeline import beam_portable, configs
from mtrec.pipeline.tfx_packaging import without_tfx_package
from mtrec.serving.direct_call import DirectCall, eager_tensor, host_cpu_device


def _loaded_signature(path):
    """A tiny SavedModel's loaded serving signature: y = x * w, w a captured variable."""
    module = tf.Module()
    module.w = tf.Variable([2.0, 3.0])
    module.f = tf.function(lambda x: {"y": x * module.w},
                           input_signature=[tf.TensorSpec([2], tf.float32)])
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def test_serving_direct_call_still_applies_to_a_loaded_signature(tmp_path):
    """serving/direct_call.py's fast path reads ConcreteFunction._captured_inputs and
    ._inference_function and calls tensorflow.python.eager.execute; build() returns
    None (the slow public path) if they move, which this catches. The captures must
    also be read once (static), not per call, which a moved _captured_inputs undoes."""
    fn = _loaded_signature(tmp_path)
    direct = DirectCall.build(fn, [tf.float32])
    assert direct is not None
    assert direct._captures is not None and len(direct._captures) == 1
    (out,) = direct([tf.constant([1.0, 2.0])])
    np.testing.assert_allclose(out.numpy(), [2.0, 6.0])


def test_loaded_signature_has_the_flat_call_serving_falls_back_to(tmp_path):
    """serving/signature.py calls a loaded signature's private
    ConcreteFunction._call_flat(args, captured_inputs) when DirectCall does not
    apply, and silently takes the slower keyword call if the name is gone."""
    fn = _loaded_signature(tmp_path)
    assert callable(getattr(fn, "_call_flat", None))
    out = fn._call_flat([tf.constant([1.0, 2.0])], fn.captured_inputs)
    np.testing.assert_allclose(out["y"].numpy(), [2.0, 6.0])


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
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # TFX's name
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


def test_trainer_executor_still_builds_fn_args_through_the_private_hook():
    """components/trainer/executor.py overrides GenericExecutor._GetFnArgs to add the
    catalogue and text inputs to fn_args; TFX's Do must still build them through it."""
    assert callable(getattr(trainer_executor.GenericExecutor, "_GetFnArgs", None))
    assert "self._GetFnArgs(" in inspect.getsource(trainer_executor.GenericExecutor.Do)
    assert TrainerExecutor.Do is trainer_executor.GenericExecutor.Do


def test_vertex_executor_still_picks_the_replica_executor_through_the_private_hook():
    """components/trainer/vertex.py overrides the Vertex GenericExecutor's
    _GetExecutorClass so every replica runs our Trainer executor; TFX's Do must
    still ask it for the class it submits."""
    assert callable(getattr(vertex_executor.GenericExecutor, "_GetExecutorClass", None))
    assert "self._GetExecutorClass()" in inspect.getsource(vertex_executor.GenericExecutor.Do)
    assert VertexExecutor.Do is vertex_executor.GenericExecutor.Do


@pytest.mark.parametrize(("base", "name", "params"), [
    # components/atomic_pusher/executor.py (keyword arguments as it passes them)
    (pusher_executor.Executor, "_MarkPushed", {"model_push", "pushed_destination",
                                               "pushed_version"}),
    (pusher_executor.Executor, "_MarkNotPushed", {"model_push"}),
    # components/example_gen/executor.py
    (import_executor.Executor, "_make_beam_pipeline", set()),
    # every mtrec executor's Do
    (base_executor.BaseExecutor, "_log_startup", {"inputs", "outputs", "exec_properties"}),
])
def test_tfx_executor_helpers_we_call_are_still_there(base, name, params):
    """Private helpers of the TFX executors mtrec subclasses, called from their Do."""
    method = getattr(base, name, None)
    assert callable(method)
    assert set(inspect.signature(method).parameters) - {"self"} == params


def test_keras_lazy_loader_records_the_keras_it_resolved():
    """mtrec/_env.py reads the private KerasLazyLoader._tfll_keras_version to tell
    which Keras tf.keras resolved to; the loader still sets it when it resolves
    ("tf_keras" here: mtrec set TF_USE_LEGACY_KERAS before tensorflow loaded)."""
    parent: dict = {}
    loader = lazy_loader.KerasLazyLoader(parent)
    assert "_tfll_keras_version" not in vars(loader)  # set on resolution only
    assert vars(loader)["_tfll_initialized"] is False  # how _env.py tells it is pending
    assert loader.layers is tf.keras.layers
    assert vars(loader)["_tfll_keras_version"] == "tf_keras"


def test_keras_version_guard_fires_when_tf_keras_is_already_keras_3(monkeypatch):
    """ensure_legacy_keras must refuse a process whose tf.keras resolved to Keras 3.
    A stand-in `tensorflow` whose `keras` is built as tensorflow's own and resolved
    without the legacy flag (the real tf.keras is already Keras 2 in this process)."""
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    namespace: dict = {}
    loader = namespace["keras"] = lazy_loader.KerasLazyLoader(namespace)
    assert loader.__version__.startswith("3.")  # resolves it, as tf.keras.X does
    # tensorflow's namespace now holds the Keras 3 module itself; a kept reference
    # to the loader shows its recorded choice instead: both must be refused.
    for keras in (namespace["keras"], loader):
        monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(keras=keras))
        with pytest.raises(KerasVersionError):
            ensure_legacy_keras()


def test_keras_version_guard_passes_keras_2_and_a_pending_loader(monkeypatch):
    ensure_legacy_keras()  # this process: tf.keras resolved to tf-keras
    assert tf.keras.__name__.startswith("tf_keras")
    pending = lazy_loader.KerasLazyLoader({})
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(keras=pending))
    ensure_legacy_keras()
    assert "_tfll_keras_version" not in vars(pending)  # the guard did not resolve it


def test_the_console_reads_the_log_lines_tfx_writes():
    """mtrec/console.py turns TFX's own log records into progress lines by their message
    templates; a TFX upgrade that rewords one would silently drop those lines."""
    runner, launch = inspect.getsource(local_dag_runner), inspect.getsource(launcher)
    for template in (console._TFX_START, console._TFX_FINISH):
        assert f"'{template}'" in runner
    for template in (console._TFX_CACHED, console._TFX_SKIPPED):
        assert f"'{template}'" in launch
