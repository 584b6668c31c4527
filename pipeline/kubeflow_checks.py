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

from mtrec.contracts.pipeline import MIRRORED, MULTI_WORKER_MIRRORED
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
# Cloud Storage bucket names: lowercase letters, digits, -, _ and ., starting and ending
# with a letter or digit; 3-63 characters, or up to 222 with dots, each dot-separated
# part at most 63 (GCS_NAME_MAX, GCS_DOTTED_NAME_MAX: check_bucket).
GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
GCS_NAME_MAX, GCS_DOTTED_NAME_MAX = 63, 222
_BUCKET_RULE = (
    "a bucket name is 3-63 lowercase letters, digits, '-', '_' and '.', up to 222 with "
    "dots but 63 between them, starting and ending with a letter or digit: "
    "e.g. gs://my-bucket/path"
)
# A Kubernetes namespace is a DNS-1123 label.
DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
# Kubernetes resource quantities (apimachinery resource.Quantity, unsigned): a CPU count is a
# number or millicores; memory takes every suffix, binary (Ki..Ei), decimal (k..E) or eN.
_NUMBER = r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
CPU_QUANTITY = re.compile(rf"({_NUMBER})m?")
MEMORY_QUANTITY = re.compile(rf"({_NUMBER})(?:[KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?")
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
    if scheme[1] != name:  # tf.io.gfile's schemes are case-sensitive: GS:// has no filesystem
        raise ValueError(f"{flag} {path!r}: write the scheme in lowercase ({name}://)")
    if name == "gs":
        check_bucket(flag, path, path[len(scheme[0]):].split("/", 1)[0])


def check_bucket(flag: str, path: str, bucket: str) -> None:
    """Cloud Storage's naming rules, which the pods' first write would otherwise enforce."""
    parts = bucket.split(".")
    if (
        not GCS_BUCKET.fullmatch(bucket)
        or len(bucket) > (GCS_DOTTED_NAME_MAX if len(parts) > 1 else GCS_NAME_MAX)
        or not all(0 < len(part) <= GCS_NAME_MAX for part in parts)
    ):
        raise ValueError(
            f"{flag} {path!r}: {bucket!r} is not a Cloud Storage bucket name ({_BUCKET_RULE})"
        )


def check_remote_training(
    *,
    distribution: str | None,
    vertex_region: str | None = None,
    vertex_project: str | None = None,
    vertex_replicas: int = 1,
    tfjob_namespace: str | None = None,
    tfjob_replicas: int = 1,
    tfjob_cpu: str | None = None,
    tfjob_memory: str | None = None,
) -> None:
    """The remote-training flags, checked before TFX loads (VertexTraining, TFJobTraining
    and PipelineSettings check some of this too, but only after the imports, in their
    field names). A flag left None is not checked. `--distribution mirrored` on several
    replicas is refused: each replica would build its own MirroredStrategy, see no
    cluster, consider itself the chief and export, so N independent trainings would
    race to the same model folder."""
    if vertex_region is not None and tfjob_namespace is not None:
        raise ValueError("--vertex-training-region and --tfjob-namespace both choose where the "
                         "Trainer runs: give one of them")
    if vertex_region is not None and not vertex_region.strip():
        raise ValueError("--vertex-training-region is empty")
    if vertex_region is not None and not vertex_project:
        raise ValueError("--vertex-training-region needs --vertex-project (the GCP project "
                         "the Vertex AI custom job runs in)")
    for flag, replicas in (("--vertex-training-replicas", vertex_replicas),
                           ("--tfjob-replicas", tfjob_replicas)):
        if replicas < 1:
            raise ValueError(f"{flag} {replicas}: at least 1 (the chief, which exports)")
    if tfjob_namespace is not None and not DNS1123_LABEL.fullmatch(tfjob_namespace):
        raise ValueError(
            f"--tfjob-namespace {tfjob_namespace!r} is not a Kubernetes namespace name "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit, "
            "at most 63 characters)"
        )
    if tfjob_cpu is not None:
        check_quantity("--tfjob-cpu", tfjob_cpu, CPU_QUANTITY, "a CPU count: 4, 0.5 or 500m")
    if tfjob_memory is not None:
        check_quantity("--tfjob-memory", tfjob_memory, MEMORY_QUANTITY,
                       "a memory size: 16Gi, 512Mi or 8G")
        if tfjob_memory.endswith("m"):
            raise ValueError(f"--tfjob-memory {tfjob_memory!r}: m is milli, thousandths of a "
                             "byte (write Mi or M)")
    remote = (("--vertex-training-region", "--vertex-training-replicas", vertex_replicas)
              if vertex_region is not None else
              ("--tfjob-namespace", "--tfjob-replicas", tfjob_replicas)
              if tfjob_namespace is not None else None)  # fmt: skip
    if distribution == MIRRORED and remote is not None and remote[2] > 1:
        where, flag, replicas = remote
        raise ValueError(
            f"--distribution {MIRRORED} with {flag} {replicas}: every replica would train "
            f"alone and export as the chief; use --distribution {MULTI_WORKER_MIRRORED} (the "
            f"default with {where}; it also uses every device of each replica) or {flag} 1"
        )


def check_quantity(flag: str, value: str, grammar: re.Pattern[str], example: str) -> None:
    """A Kubernetes resource quantity above zero (the TFJob's requests and limits)."""
    match = grammar.fullmatch(value)
    if match is None:
        raise ValueError(f"{flag} {value!r} is not a Kubernetes quantity ({example})")
    if float(match[1]) == 0:
        raise ValueError(f"{flag} {value!r}: must be more than 0")


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
