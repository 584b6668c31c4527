"""The Kubeflow V2 / Vertex spec compiled from the shared pipeline definition.

Compiles with `mtrec compile` (KubeflowV2DagRunner) into a tmp dir (no cluster, no image) and
checks what a run depends on: every component with our image, the runtime
parameters as pipeline inputs, Beam args in every container, the model config
in the Trainer's input, and TFMA and the Pusher behind the retrieval gate.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from tfx.orchestration.kubeflow.v2.compiler_utils import _SCHEMA_TITLE_RE as SCHEMA_TITLE
from tfx.orchestration.kubeflow.v2.compiler_utils import TITLE_TO_CLASS_PATH
from tfx.utils import import_utils

from mtrec.cli import build_parser
from mtrec.commands.compile import EXAMPLE
from mtrec.components.retrieval_evaluator.artifacts import RetrievalBlessing
from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.contracts import features as F
from mtrec.contracts.metrics import NDCG_CHANGE
from mtrec.pipeline import configs  # conftest imported mtrec first (Keras 2)
from mtrec.pipeline import kubeflow_v2_runner as kfv2
from mtrec.pipeline.settings import PipelineSettings
from tests.kubeflow_support import (
    BEAM_ARGS,
    CLI_ARGS,
    COMPONENTS,
    EXAMPLES_ROOT,
    IMAGE,
    MODEL_CONFIG,
    NO_TEXT,
    RESOLVER_TASKS,
    RESOLVER_TASKS_BY_ROLE,
    compile_spec,
    containers_of,
    parse_compile,
    tasks_of,
)

# CLI_ARGS without its PVC: a PVC is for KFP OSS, which needs --no-baseline (below).
_PVC = CLI_ARGS.index("--serving-pvc")
VERTEX_ARGS = [*CLI_ARGS[:_PVC], *CLI_ARGS[_PVC + 2:]]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, dict]:
    """The YAML spec written by the CLI, with runtime parameters (the default)."""
    out = tmp_path_factory.mktemp("kfv2") / "mtrec.yaml"
    compile_spec([*VERTEX_ARGS, *NO_TEXT, "--output", str(out), "--", *BEAM_ARGS])
    spec, *_ = yaml.safe_load_all(out.read_text())
    return out, spec


@pytest.fixture(scope="module")
def static_job(tmp_path_factory) -> dict:
    """The JSON PipelineJob compiled with every value baked in."""
    settings, _ = parse_compile(
        [
            *CLI_ARGS[:6],
            *NO_TEXT,
            "--serving-model-dir",
            "gs://bucket/serving",
            "--epochs",
            "2",
            "--no-runtime-parameters",
        ]
    )
    out = tmp_path_factory.mktemp("kfv2") / "mtrec.json"
    kfv2.compile_pipeline(settings, str(out))
    return json.loads(out.read_text())


def test_every_component_present_with_our_image(compiled):
    _, spec = compiled
    assert set(tasks_of(spec)) == COMPONENTS | RESOLVER_TASKS
    containers = containers_of(spec)
    assert set(containers) == {f"{c}_executor" for c in COMPONENTS}
    for label, container in containers.items():
        assert container["image"] == IMAGE, label
        # TFX's KFP v2 container launcher, run by ours (pipeline/kfp_entrypoint.py).
        assert container["command"] == list(configs.KFP_TASK_COMMAND)
        assert configs.KFP_TASK_COMMAND[-1] == "mtrec.pipeline.kfp_entrypoint"
    executor_class = {
        label: c["args"][c["args"].index("--executor_class_path") + 1]
        for label, c in containers.items()
    }
    assert executor_class["AnomalyGate_executor"].startswith("mtrec.components.anomaly_gate")
    assert executor_class["AtomicPusher_executor"].startswith("mtrec.components.atomic_pusher")
    assert executor_class["RetrievalEvaluator_executor"].startswith(
        "mtrec.components.retrieval_evaluator"
    )
    assert executor_class["Trainer_executor"].startswith("mtrec.components.trainer")
    for gen in ("ImportExampleGen", "CatalogExampleGen"):
        assert executor_class[f"{gen}_executor"].startswith("mtrec.components.example_gen")
    producers = {
        key: artifact["taskOutputArtifact"]["producerTask"]
        for key, artifact in tasks_of(spec)["Trainer"]["inputs"]["artifacts"].items()
    }
    assert producers["item_catalog"] == "CatalogExampleGen"
    trainer = tasks_of(spec)["Trainer"]["inputs"]["parameters"]
    assert trainer["run_fn"]["runtimeValue"]["constant"] == configs.RUN_FN


def test_runtime_parameters_are_root_inputs_with_defaults(compiled):
    _, spec = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == set(configs.RUNTIME_PARAMETERS)
    for name, param in params.items():
        assert param["parameterType"] == "STRING", name
        assert param["isOptional"] is True and param["defaultValue"], name
    assert params[configs.PARAM_DATA_ROOT]["defaultValue"] == EXAMPLES_ROOT
    assert json.loads(params[configs.PARAM_RETRIEVAL_THRESHOLDS]["defaultValue"]) == {
        "hit_rate@50": 0.1
    }
    eval_config = json.loads(params[configs.PARAM_EVAL_CONFIG]["defaultValue"])
    bounds = [
        m["threshold"]["value_threshold"]
        for spec_ in eval_config["metrics_specs"]
        for m in spec_["metrics"]
        if "threshold" in m
    ]
    assert {"upper_bound": 1.2} in bounds
    changes = {
        (output, m["class_name"]): m["threshold"]["change_threshold"]["absolute"]
        for spec_ in eval_config["metrics_specs"]
        for output in spec_["output_names"]
        for m in spec_["metrics"]
        if "change_threshold" in m.get("threshold", {})
    }
    assert changes == {
        (F.OUT_RATING, "RootMeanSquaredError"): configs.RATING_RMSE_MAX_INCREASE,
        (F.OUT_RELEVANCE, "AUC"): -0.02,  # --relevance-auc-max-decrease 0.02
    }
    # Each parameter feeds the exec property it stands for.
    consumers = {
        ("ImportExampleGen", "input_base"): configs.PARAM_DATA_ROOT,
        ("CatalogExampleGen", "input_base"): configs.PARAM_DATA_ROOT,
        ("Trainer", "custom_config"): configs.PARAM_TRAINER_CONFIG,
        ("Evaluator", "eval_config"): configs.PARAM_EVAL_CONFIG,
        ("RetrievalEvaluator", "thresholds"): configs.PARAM_RETRIEVAL_THRESHOLDS,
    }
    for (task, prop), name in consumers.items():
        param = tasks_of(spec)[task]["inputs"]["parameters"][prop]
        assert param == {"componentInputParameter": name}, (task, prop)
    assert spec["defaultPipelineRoot"] == "gs://bucket/root"


def test_beam_args_reach_every_container(compiled):
    _, spec = compiled
    for label, container in containers_of(spec).items():
        assert tuple(container["args"][-len(BEAM_ARGS) :]) == BEAM_ARGS, label
    # ImportExampleGen's driver (span/fingerprint resolution) gets them too.
    driver = containers_of(spec)["ImportExampleGen_executor"]["lifecycle"]["preCacheCheck"]
    assert tuple(driver["args"][-len(BEAM_ARGS) :]) == BEAM_ARGS


def test_trainer_custom_config_survives(compiled, static_job):
    _, spec = compiled
    default = spec["root"]["inputDefinitions"]["parameters"][configs.PARAM_TRAINER_CONFIG]
    custom = json.loads(default["defaultValue"])
    assert custom == {
        "model": {**MODEL_CONFIG, "epochs": 3},
        "distribution": "multi_worker_mirrored",
    }
    static = static_job["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]
    baked = json.loads(static["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert baked == {"model": {"epochs": 2}, "distribution": None}


def test_static_job_has_no_runtime_parameters(static_job):
    spec = static_job["pipelineSpec"]
    assert "inputDefinitions" not in spec["root"]
    example_gen = spec["root"]["dag"]["tasks"]["ImportExampleGen"]["inputs"]["parameters"]
    assert example_gen["input_base"]["runtimeValue"]["constant"] == EXAMPLES_ROOT
    assert static_job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    # No `--`: the in-container DirectRunner defaults.
    trainer = containers_of(spec)["Trainer_executor"]["args"]
    assert tuple(trainer[-len(kfv2.DEFAULT_BEAM_ARGS) :]) == kfv2.DEFAULT_BEAM_ARGS


def test_tfma_and_the_pusher_run_only_after_the_retrieval_gate_blessed(compiled):
    """The gate chain (pipeline.py): RetrievalEvaluator -> Cond(blessed):
    Evaluator -> Pusher, which checks TFMA's blessing itself. So a blessed
    tfx.ModelBlessing, what the compiled resolver looks up as the baseline,
    exists only for a model that passed both gates."""
    _, spec = compiled
    tasks = tasks_of(spec)
    retrieval_blessed = (
        "inputs.artifacts['_RetrievalEvaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0"
    )
    for name in ("Evaluator", "AtomicPusher"):
        assert tasks[name]["triggerPolicy"]["condition"] == f"({retrieval_blessed})"
        assert tasks[name]["inputs"]["artifacts"]["_RetrievalEvaluator.blessing"][
            "taskOutputArtifact"] == {"outputArtifactKey": "blessing",
                                      "producerTask": "RetrievalEvaluator"}
    assert "triggerPolicy" not in tasks["RetrievalEvaluator"]
    pusher = tasks["AtomicPusher"]
    assert pusher["inputs"]["artifacts"]["model_blessing"]["taskOutputArtifact"] == {
        "outputArtifactKey": "blessing", "producerTask": "Evaluator"
    }  # fmt: skip
    assert {"Evaluator", "RetrievalEvaluator"} <= set(pusher["dependentTasks"])
    destination = json.loads(
        pusher["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constant"]
    )
    assert destination == {"filesystem": {"base_directory": "/models/mtrec"}}


def test_the_baseline_resolver_can_only_find_tfmas_blessings(compiled):
    """The compiled latest-blessed-model resolver queries every LIVE
    `tfx.ModelBlessing` with blessed = 1 in the pipeline, whatever produced it
    (no producer filter, unlike the local resolver); then the model named by its
    `current_model_id`, which only TFMA's blessing carries as an artifact name.
    So the Evaluator must be the only task writing that type."""
    _, spec = compiled
    executors = spec["deploymentSpec"]["executors"]
    resolver = executors[f"{RESOLVER_TASKS_BY_ROLE['blessing']}_executor"]["resolver"]
    query = resolver["outputArtifactQueries"]["model_blessing"]["filter"]
    assert 'schema_title="tfx.ModelBlessing"' in query and "producer" not in query
    writers = {  # tasks that run an executor (the resolvers only pass blessings on)
        (name, key)
        for name, component in spec["components"].items()
        if "container" in executors[component["executorLabel"]]
        for key, output in component.get("outputDefinitions", {}).get("artifacts", {}).items()
        if yaml.safe_load(output["artifactType"]["instanceSchema"])["title"] == "tfx.ModelBlessing"
    }
    assert writers == {("Evaluator", "blessing")}
    retrieval = spec["components"]["RetrievalEvaluator"]["outputDefinitions"]["artifacts"]
    schema = yaml.safe_load(retrieval["blessing"]["artifactType"]["instanceSchema"])
    assert schema["title"] == RetrievalBlessing.TYPE_NAME


def test_every_custom_artifact_type_imports_by_its_name_as_a_pod_imports_it(tmp_path):
    """A pod rebuilds each artifact from its schema title: TFX's own titles map to
    classes, any other title is imported as a class path (the TextEncoder task
    failed this way before mtrec/__init__.py provided its type)."""
    out = tmp_path / "mtrec.yaml"
    compile_spec([*VERTEX_ARGS, "--output", str(out)])  # with the TextEncoder
    spec, *_ = yaml.safe_load_all(out.read_text())
    titles = {
        yaml.safe_load(artifact["artifactType"]["instanceSchema"])["title"]
        for component in spec["components"].values()
        for side in ("inputDefinitions", "outputDefinitions")
        for artifact in component.get(side, {}).get("artifacts", {}).values()
    }
    custom = titles - set(TITLE_TO_CLASS_PATH)
    assert custom == {ItemTextEmbeddings.TYPE_NAME, RetrievalBlessing.TYPE_NAME}
    for title in custom:
        assert title == import_utils.import_class_by_path(title).TYPE_NAME


def test_yaml_is_a_kfp_client_package_with_pvc_mount(tmp_path):
    from kfp.client import client

    path = tmp_path / "kfp.yaml"
    compile_spec([*CLI_ARGS, *NO_TEXT, "--no-baseline", "--output", str(path)])
    doc = client._extract_pipeline_yaml(str(path))  # what create_run_from_pipeline_package reads
    assert set(doc.pipeline_spec.root.dag.tasks) == COMPONENTS
    platform = doc.to_dict()["platform_spec"]["platforms"]["kubernetes"]
    mounts = platform["deploymentSpec"]["executors"]["AtomicPusher_executor"]["pvcMount"]
    assert mounts == [{"constant": "mtrec-pusher-base", "mountPath": "/models"}]


def test_no_baseline_drops_the_resolver_tasks_and_the_change_bounds(tmp_path):
    """KFP OSS's v2 backend rejects resolver executors: --no_baseline compiles none.
    The bounds against a baseline are left out too: they were compiled in (TFMA's
    change thresholds, `ndcg@10_change`) and only skipped at run time."""
    out = tmp_path / "kfp.yaml"
    compile_spec([*CLI_ARGS[:8], *NO_TEXT, "--no-baseline", "--output", str(out)])
    spec, *_ = yaml.safe_load_all(out.read_text())
    assert set(tasks_of(spec)) == COMPONENTS
    assert all("resolver" not in ex for ex in spec["deploymentSpec"]["executors"].values())
    assert "baseline_model" not in spec["components"]["Evaluator"]["inputDefinitions"]["artifacts"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    eval_config = json.loads(params[configs.PARAM_EVAL_CONFIG]["defaultValue"])
    thresholds = [m["threshold"] for ms in eval_config["metrics_specs"] for m in ms["metrics"]
                  if "threshold" in m]  # fmt: skip
    assert len(thresholds) == 2 and all("value_threshold" in t for t in thresholds)
    assert not any("change_threshold" in t for t in thresholds)
    retrieval = json.loads(params[configs.PARAM_RETRIEVAL_THRESHOLDS]["defaultValue"])
    assert retrieval == {k: v for k, v in configs.RETRIEVAL_THRESHOLDS.items()
                         if k != NDCG_CHANGE} and NDCG_CHANGE in configs.RETRIEVAL_THRESHOLDS


def test_parse_args_passes_everything_after_double_dash_to_beam():
    flink = ["--runner=FlinkRunner", "--flink_master=flink:8081", "--environment_type=EXTERNAL"]
    settings, output = parse_compile([*CLI_ARGS[:8], "--output", "x.json", "--", *flink])
    assert settings.pipeline.beam_pipeline_args == tuple(flink)
    assert output == "x.json" and settings.pipeline.runtime_parameters
    assert "epochs" not in settings.pipeline.model
    settings, _ = parse_compile(CLI_ARGS[:8])
    assert settings.pipeline.beam_pipeline_args == kfv2.DEFAULT_BEAM_ARGS


def test_json_job_carries_parameter_defaults_in_runtime_config(tmp_path):
    """The .json PipelineJob (Vertex) has the defaults in runtimeConfig too."""
    settings, _ = parse_compile([*CLI_ARGS[:8], *NO_TEXT])
    job = kfv2.compile_pipeline(settings, str(tmp_path / "job.json"))
    values = json.loads((tmp_path / "job.json").read_text())["runtimeConfig"]["parameterValues"]
    assert values == {
        k: v["defaultValue"]
        for k, v in job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"].items()
    }
    assert values[configs.PARAM_DATA_ROOT] == EXAMPLES_ROOT
    kfp = dataclasses.replace(settings, serving_pvc="pvc", pipeline=dataclasses.replace(
        settings.pipeline, baseline_model=False))
    with pytest.raises(ValueError, match="yaml"):
        kfv2.compile_pipeline(kfp, str(tmp_path / "pvc.json"))
    assert not (tmp_path / "pvc.json").exists()


def test_pvc_requires_serving_dir_under_mount(tmp_path):
    settings, _ = parse_compile(
        [*CLI_ARGS[:6], "--serving-model-dir", "gs://bucket/serving", "--serving-pvc", "pvc"]
    )
    with pytest.raises(ValueError, match="PVC mount"):
        kfv2.compile_pipeline(settings, str(tmp_path / "x.yaml"))


def test_create_pipeline_propagates_beam_args_to_components():
    """Pipeline-level args reach BeamExecutorSpec components and the compiled IR."""
    from tfx.dsl.compiler import compiler
    from tfx.dsl.components.base import executor_spec
    from tfx.proto.orchestration import executable_spec_pb2

    from mtrec.pipeline.pipeline import create_pipeline

    args = ["--runner=DirectRunner", "--direct_num_workers=3", "--temp_location=/tmp/beam"]
    pipeline = create_pipeline(PipelineSettings(
        pipeline_name="mtrec", pipeline_root="/tmp/root", examples_root="/tmp/examples",
        schema_path="/tmp/schema.pbtxt", serving_model_dir="/tmp/serving",
        beam_pipeline_args=args,
    ))  # fmt: skip
    assert pipeline.beam_pipeline_args == args
    beam_nodes = {
        c.id
        for c in pipeline.components
        if isinstance(c.executor_spec, executor_spec.BeamExecutorSpec)
    }
    assert {"ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"} <= beam_nodes
    for component in pipeline.components:
        if component.id in beam_nodes:
            # Pipeline args are prepended so component-level args can override them.
            assert component.executor_spec.beam_pipeline_args[: len(args)] == args

    ir = compiler.Compiler().compile(pipeline)
    compiled_beam = set()
    for node_id, spec in _executor_specs(ir).items():
        beam = executable_spec_pb2.BeamExecutableSpec()
        if spec.Unpack(beam):
            compiled_beam.add(node_id)
            assert list(beam.beam_pipeline_args) == args, node_id
    assert compiled_beam == beam_nodes


def _executor_specs(ir) -> dict:
    from tfx.proto.orchestration import pipeline_pb2

    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    ir.deployment_config.Unpack(deployment)
    return dict(deployment.executor_specs)


def test_settings_reject_unknown_distribution_and_settings_at_definition_time():
    paths = {"pipeline_root": "/r", "examples_root": "/e", "schema_path": "/s",
             "serving_model_dir": "/m"}
    with pytest.raises(ValueError, match="distribution"):
        PipelineSettings(**paths, distribution="parameter_server")
    with pytest.raises(ValueError, match="unknown model config keys"):
        PipelineSettings(**paths, model={"embeding_dim": 8})
    with pytest.raises(ValueError, match="unknown text encoder settings"):
        PipelineSettings(**paths, text_encoder={"hiden_dim": 8})


def test_text_encoder_compiles_and_feeds_the_trainer(tmp_path):
    """With the default settings (as local runs) the TextEncoder is in the spec.

    KFP v2 only compiles custom artifact types named `<namespace>.<Type>`."""
    assert SCHEMA_TITLE.fullmatch(ItemTextEmbeddings.TYPE_NAME)
    out = tmp_path / "text.yaml"
    compile_spec([*CLI_ARGS[:8], "--output", str(out)])
    spec, *_ = yaml.safe_load_all(out.read_text())
    assert set(tasks_of(spec)) == COMPONENTS | RESOLVER_TASKS | {"TextEncoder"}
    trainer = tasks_of(spec)["Trainer"]["inputs"]["artifacts"]["item_text_embeddings"]
    assert trainer["taskOutputArtifact"]["producerTask"] == "TextEncoder"
    assert containers_of(spec)["TextEncoder_executor"]["image"] == IMAGE


def test_the_help_example_compiles_as_written_without_a_note(tmp_path, monkeypatch, capsys):
    """Its placeholders in capitals (REGION-docker.pkg.dev/PROJECT/..., gs://BUCKET) were
    refused by the image and bucket checks, the image's error offering the same string;
    then it printed a note that Dataflow's workers need --sdk_container_image."""
    argv = EXAMPLE.split("example:", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ").split()
    assert argv[:2] == ["mtrec", "compile"]
    monkeypatch.chdir(tmp_path)
    compile_spec(argv[2:])
    assert (tmp_path / "mtrec_pipeline.yaml").exists()
    assert "note:" not in capsys.readouterr().err


def test_help_shows_the_output_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compile", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {configs.PIPELINE_NAME}_pipeline.yaml)" in help_text
