"""What `mtrec compile` checks before compiling: values a cluster would reject late.

Each check raises ValueError with one line naming the flag, so the command
stops in a second with a message (mtrec/commands/compile.py), not after the
compile with a traceback, or never: TFX compiles an empty image into its
own public image (`gcr.io/tfx-oss-public/tfx`, without mtrec) and accepts any
pipeline root, which only the run itself would then refuse. No TFX here: the
checks run before it loads.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence

from mtrec.pipeline.output_paths import existing_part

# KubeflowV2DagRunner's own rule (tfx/orchestration/kubeflow/v2/pipeline_builder.py
# _LEGAL_NAME_PATTERN), whose error message prints `%` instead of the name.
PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
# A Docker image reference (distribution/reference's grammar): [domain[:port]/]path[:tag][@digest].
_DOMAIN = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    rf"(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
# Cloud Storage bucket names: lowercase letters, digits, -, _ and ., 3-222 characters,
# starting and ending with a letter or digit.
GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//)?")
# Schemes the locked stack cannot read (docs/kubeflow.md §2), with what to do instead.
_UNREADABLE = {
    "gcs": "Cloud Storage is gs://",
    "minio": "TFX executors open artifacts with tf.io.gfile, which has no minio:// "
    "(use gs:// or a mounted path)",
    "s3": "s3:// needs tensorflow-io and apache-beam[aws], which the image's lock lacks",
    "http": "use gs:// or a mounted path",
    "https": "use gs:// or a mounted path",
}
OUTPUT_SUFFIXES = (".yaml", ".yml", ".json")


def storage_paths(
    pipeline_root: str, examples_root: str, serving_model_dir: str, schema_path: str
) -> dict[str, str]:
    """{flag: path} of the paths the pods read and write."""
    return {
        "--pipeline-root": pipeline_root,
        "--examples-root": examples_root,
        "--serving-model-dir": serving_model_dir,
        "--schema-path": schema_path,
    }


def check_deployment(
    *,
    image: str,
    pipeline_name: str,
    paths: Mapping[str, str],
    serving_pvc: str | None,
    serving_pvc_mount: str,
) -> None:
    """Every check of `mtrec compile`'s deployment flags (not --output: check_output)."""
    check_image(image)
    check_pipeline_name(pipeline_name)
    for flag, path in paths.items():
        check_storage_path(flag, path)
    if serving_pvc:
        if not posixpath.isabs(serving_pvc_mount):
            raise ValueError(f"--serving-pvc-mount {serving_pvc_mount!r} is not an absolute path")
        if not under_mount(paths["--serving-model-dir"], serving_pvc_mount):
            raise ValueError(
                f"--serving-model-dir must lie under the PVC mount {serving_pvc_mount} "
                "(--serving-pvc-mount)"
            )


def check_image(image: str) -> None:
    if not IMAGE.fullmatch(image):
        raise ValueError(
            f"--image {image!r} is not a container image reference "
            "(e.g. us-docker.pkg.dev/my-project/mtrec/mtrec:0.1; lowercase repository)"
        )


def check_pipeline_name(name: str) -> None:
    if not PIPELINE_NAME.fullmatch(name):
        raise ValueError(
            f"--pipeline-name {name!r}: KFP/Vertex pipeline names are lowercase letters, "
            "digits and '-', starting with a letter or digit, at most 128 characters"
        )


def check_storage_path(flag: str, path: str) -> None:
    """A path every pod reads or writes: gs://BUCKET[/...], another tf.io.gfile
    scheme, or a local (mounted) path. Refuses what no pod could use."""
    if not path.strip():
        raise ValueError(f"{flag} is empty")
    scheme = _SCHEME.match(path)
    if scheme is None or len(scheme[1]) == 1:  # one letter: a Windows drive
        return  # a local path (a volume in the pods; kfp_local runs it here)
    name = scheme[1].lower()
    if name in _UNREADABLE:
        raise ValueError(f"{flag} {path!r}: {_UNREADABLE[name]}")
    if not scheme[2]:
        raise ValueError(f"{flag} {path!r} is not a URI: write {name}://...")
    if name == "gs":
        bucket = path[len(scheme[0]):].split("/", 1)[0]
        if not GCS_BUCKET.fullmatch(bucket):
            raise ValueError(
                f"{flag} {path!r}: {bucket!r} is not a Cloud Storage bucket name "
                "(gs://BUCKET/PATH; lowercase letters, digits, '-', '_', '.')"
            )


def relative_paths(paths: dict[str, str]) -> list[str]:
    """The flags whose value is a relative local path: a pod resolves it against
    the image's working directory, kfp_local against the directory it runs in."""
    return [
        flag for flag, path in paths.items()
        if path.strip() and _SCHEME.match(path) is None and not posixpath.isabs(path)
    ]  # fmt: skip


def beam_notes(beam_args: Sequence[str] | None, image: str) -> list[str]:
    """Warnings for Beam args that compile but leave remote workers without mtrec."""
    args = list(beam_args or ())
    runner = ""
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(args):
            runner = args[i + 1]
    named = any(a.startswith(("--sdk_container_image", "--worker_harness_container_image"))
                for a in args)  # fmt: skip
    if runner.split(".")[-1] in ("DataflowRunner", "dataflow") and not named:
        return [
            "Dataflow workers run Beam's stock container, without mtrec and the locked "
            f"TF/TFX stack: add --sdk_container_image={image} after `--` (docs/kubeflow.md §7)"
        ]
    return []


def under_mount(path: str, mount: str) -> bool:
    """Whether local `path` is `mount` or inside it (after resolving `.` and `..`)."""
    path, mount = posixpath.normpath(path), posixpath.normpath(mount)
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def check_output(path: str, *, serving_pvc: str | None = None) -> None:
    """The compiled spec's file: .yaml/.yml/.json (.yaml for a PVC's platform spec),
    on this machine, writable."""
    scheme = _SCHEME.match(path)
    if scheme is not None and scheme[2]:
        raise ValueError(
            f"--output {path!r}: write the spec here, then copy it (gcloud storage cp)"
        )
    if not path.endswith(OUTPUT_SUFFIXES):
        raise ValueError(
            f"--output {path!r} must end in .yaml (PipelineSpec for kfp.Client and Vertex) "
            "or .json (Vertex PipelineJob)"
        )
    if serving_pvc and not path.endswith((".yaml", ".yml")):
        raise ValueError("--serving-pvc needs a .yaml output (a KFP platform spec)")
    if os.path.isdir(path):
        raise ValueError(f"--output {path!r} is a directory")
    existing = existing_part(path)
    if not os.path.isdir(existing):
        raise ValueError(f"--output {path!r}: {existing} is a file, not a directory")
    target = path if os.path.exists(path) else existing
    if not os.access(target, os.W_OK):
        raise ValueError(f"--output {path!r}: {target} is not writable")
