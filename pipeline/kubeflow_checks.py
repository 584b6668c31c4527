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
from collections.abc import Mapping

from mtrec.contracts.pipeline import MIRRORED, MULTI_WORKER_MIRRORED
from mtrec.pipeline.configs import IMAGE_WORKDIR, PATTERN_CHARACTERS
from mtrec.pipeline.output_paths import existing_part

# KubeflowV2DagRunner's own rule (tfx/orchestration/kubeflow/v2/pipeline_builder.py
# _LEGAL_NAME_PATTERN, whose error message prints `%` instead of the name), within
# tfx.dsl.Pipeline's length limit (tfx/orchestration/pipeline.py
# _MAX_PIPELINE_NAME_LENGTH, 63: Argo's workflow names), which the pattern's 128 exceeds.
PIPELINE_NAME_MAX = 63
PIPELINE_NAME = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{PIPELINE_NAME_MAX - 1}}}")
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
# A Kubernetes namespace is a DNS-1123 label; a PVC or service account name a DNS-1123
# subdomain (dot-separated labels, at most DNS1123_SUBDOMAIN_MAX characters).
DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123 = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123}(?:\.{_DNS1123})*")
DNS1123_SUBDOMAIN_MAX = 253
_SUBDOMAIN_RULE = ("lowercase letters, digits, '-' and '.', starting and ending with a letter "
                   f"or digit, at most {DNS1123_SUBDOMAIN_MAX} characters")
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
# The paths TFX reads and writes by file pattern (PATTERN_CHARACTERS).
PATTERN_PATHS = ("--pipeline-root", "--examples-root", "--serving-model-dir")


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
        found = sorted({c for c in path if c in PATTERN_CHARACTERS})
        if flag in PATTERN_PATHS and found:
            raise ValueError(f"{flag} {path!r} holds {' '.join(found)}, which Beam and TFX "
                             "read as file-pattern characters in the paths of their own "
                             "files: give a path that has none")
    if serving_pvc is not None:
        check_kubernetes_name("--serving-pvc", serving_pvc)
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
            f"digits and '-', starting with a letter or digit, at most {PIPELINE_NAME_MAX} "
            f"characters (TFX's limit; this one has {len(name)})"
        )


def check_storage_path(flag: str, path: str) -> None:
    """A path every pod reads or writes: gs://BUCKET[/...], another tf.io.gfile
    scheme, or a local (mounted) path. Refuses what no pod could use."""
    if not path.strip():
        raise ValueError(f"{flag} is empty")
    if path != path.strip():  # " gs://b/x" was a relative local path
        raise ValueError(f"{flag} {path!r} starts or ends with whitespace")
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


def check_kubernetes_name(flag: str, name: str) -> None:
    """A Kubernetes object name (a DNS-1123 subdomain): a PVC's, a service account's."""
    if len(name) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.fullmatch(name):
        raise ValueError(f"{flag} {name!r} is not a Kubernetes name ({_SUBDOMAIN_RULE})")


def check_kfp_backend(*, serving_pvc: str | None, tfjob_namespace: str | None,
                      baseline: bool) -> None:
    """A PVC mount or a TFJob Trainer deploys to Kubeflow Pipelines (OSS), whose v2
    backend rejects the two resolver tasks of the latest-blessed-model lookup
    (`resolver not implemented yet`): the run would fail, and only there."""
    flag = ("--serving-pvc" if serving_pvc is not None
            else "--tfjob-namespace" if tfjob_namespace is not None else None)  # fmt: skip
    if flag is not None and baseline:
        raise ValueError(f"{flag} is for Kubeflow Pipelines, whose v2 backend rejects the "
                         "latest-blessed-model resolver tasks: add --no-baseline "
                         "(docs/kubeflow.md §5)")


def check_quantity(flag: str, value: str, grammar: re.Pattern[str], example: str) -> None:
    """A Kubernetes resource quantity above zero (the TFJob's requests and limits)."""
    match = grammar.fullmatch(value)
    if match is None:
        raise ValueError(f"{flag} {value!r} is not a Kubernetes quantity ({example})")
    if float(match[1]) == 0:
        raise ValueError(f"{flag} {value!r}: must be more than 0")


def relative_paths(paths: Mapping[str, str]) -> list[str]:
    """The flags whose value is a relative local path: a pod resolves it against
    the image's working directory, kfp_local against the directory it runs in."""
    return [flag for flag, path in paths.items()
            if _is_local(path) and not posixpath.isabs(path)]


def path_notes(paths: Mapping[str, str], *, serving_pvc: str | None,
               preset_dir: str | None = None) -> list[str]:
    """Notes for local paths that compile but may not be what a pod sees: each pod has
    its own filesystem, and only the Pusher mounts a volume (--serving-pvc)."""
    notes = []
    root, serving = paths["--pipeline-root"], paths["--serving-model-dir"]
    if _is_absolute_local(root):
        notes.append(f"--pipeline-root {root!r} is a local path: each pod writes its own "
                     "filesystem, so the tasks pass no artifacts unless it is a volume "
                     "mounted into every pod (kfp_local runs it on this machine)")
    if serving_pvc is None and _is_local(serving):
        notes.append(f"--serving-model-dir {serving!r} is a local path without --serving-pvc: "
                     "the Pusher writes it into its pod's own filesystem, which goes with "
                     "the pod")
    for flag, path in (("--schema-path", paths["--schema-path"]),
                       ("--text-encoder preset_dir", preset_dir)):
        if path and _is_absolute_local(path) and not under_mount(path, IMAGE_WORKDIR):
            notes.append(f"{flag} {path!r} is read in the pods: it must exist inside "
                         "--image (this one is not under its working directory, "
                         f"{IMAGE_WORKDIR})")
    return notes


def _is_local(path: str) -> bool:
    return bool(path.strip()) and _SCHEME.match(path) is None


def _is_absolute_local(path: str) -> bool:
    return _is_local(path) and posixpath.isabs(path)


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
