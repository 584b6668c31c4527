"""`mtrec compile`'s flag checks (pipeline/kubeflow_checks.py): one line, before TFX compiles.

Each of these compiled before, into a spec no cluster could run: an empty
--image became TFX's public image (without mtrec), any pipeline root or
--output went through (`x.txt` got the JSON job), and an unwritable output
or a bad pipeline name ended in a traceback (TFX's message prints `%`).
"""

from __future__ import annotations

import pytest

from mtrec.cli import main as cli_main
from mtrec.pipeline import kubeflow_checks as checks
from tests.kubeflow_support import IMAGE, NO_TEXT

FLAGS = {
    "--image": IMAGE,
    "--pipeline-root": "gs://bucket/root",
    "--examples-root": "gs://bucket/examples",
    "--serving-model-dir": "gs://bucket/serving",
}


def _compile(tmp_path, **overrides: str) -> list[str]:
    flags = {**FLAGS, "--output": str(tmp_path / "spec.yaml"), **overrides}
    return ["compile", *[x for item in flags.items() for x in item], *NO_TEXT]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--image", "", "not a container image reference"),
        ("--image", "my image", "not a container image reference"),
        ("--image", "Europe-docker.pkg.dev/p/Repo/mtrec:1", "not a container image reference"),
        ("--pipeline-root", "gs://", "'' is not a Cloud Storage bucket name"),
        ("--pipeline-root", "gs:/bucket/root", "is not a URI: write gs://"),
        ("--pipeline-root", "gs://My_Bucket/root", "'My_Bucket' is not a Cloud Storage bucket"),
        ("--examples-root", "gcs://bucket/examples", "Cloud Storage is gs://"),
        ("--pipeline-root", "minio://mlpipeline/root", "no minio://"),
        ("--serving-model-dir", " ", "--serving-model-dir is empty"),
        ("--pipeline-name", "My Pipeline", "KFP/Vertex pipeline names are lowercase"),
        ("--output", "spec.txt", "must end in .yaml"),
        ("--output", "gs://bucket/spec.yaml", "write the spec here, then copy it"),
    ],
)
def test_a_bad_flag_is_one_line_and_writes_nothing(tmp_path, capsys, flag, value, message):
    if flag == "--output" and "://" not in value:
        value = str(tmp_path / value)  # not into the cwd, should the check fail
    assert cli_main(_compile(tmp_path, **{flag: value})) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for output, message in [
        (tmp_path / "file" / "spec.yaml", "is a file, not a directory"),
        (tmp_path, "must end in .yaml"),
        (tmp_path / "folder.yaml", "is a directory"),
    ]:
        (tmp_path / "folder.yaml").mkdir(exist_ok=True)
        assert cli_main(_compile(tmp_path, **{"--output": str(output)})) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_good_values_pass_and_the_double_slash_of_a_gs_path_is_kept():
    for image in (IMAGE, "mtrec:dev", "localhost:5000/mtrec", "gcr.io/p/mtrec@sha256:" + "a" * 64):
        checks.check_image(image)
    for path in ("gs://bucket//root", "gs://b-1.x_y", "/models/mtrec", "hdfs://nn/root"):
        checks.check_storage_path("--pipeline-root", path)
    assert checks.relative_paths({"--a": "outputs/x", "--b": "/abs", "--c": "gs://b/x"}) == ["--a"]


def test_the_serving_dir_must_be_under_the_pvc_mount_after_dots_resolve(tmp_path):
    assert checks.under_mount("/models/mtrec", "/models/")
    assert checks.under_mount("/models", "/models")
    assert not checks.under_mount("/models/../etc", "/models")
    assert not checks.under_mount("/models2/mtrec", "/models")
    with pytest.raises(ValueError, match="absolute"):
        checks.check_deployment(image=IMAGE, pipeline_name="mtrec",
                                paths=checks.storage_paths("/r", "/e", "/m/x", "/s"),
                                serving_pvc="pvc", serving_pvc_mount="m")  # fmt: skip
    with pytest.raises(ValueError, match="needs a .yaml output"):  # before the compile
        checks.check_output(str(tmp_path / "spec.json"), serving_pvc="pvc")


def test_dataflow_without_the_image_for_its_workers_gets_a_note():
    dataflow = ["--runner=DataflowRunner", "--project=p", "--region=r"]
    (note,) = checks.beam_notes(dataflow, IMAGE)
    assert f"--sdk_container_image={IMAGE}" in note
    assert checks.beam_notes(["--runner", "DataflowRunner"], IMAGE)
    assert not checks.beam_notes([*dataflow, f"--sdk_container_image={IMAGE}"], IMAGE)
    assert not checks.beam_notes(None, IMAGE)  # the in-pod FnApiRunner
    assert not checks.beam_notes(["--runner=FlinkRunner", "--environment_type=EXTERNAL"], IMAGE)
