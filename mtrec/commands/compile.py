"""`mtrec compile`: the Kubeflow Pipelines v2 / Vertex AI spec of the same pipeline.

The flags build a `KubeflowSettings` (pipeline/kubeflow_v2_runner.py, the
library part); model, text-encoder, blessing and cache flags are `mtrec run`'s
(options.py). Everything after `--` goes to Beam (pipeline/kubeflow_beam_args.py:
the in-pod runner kept when it names none; mtrec's own flags there refused).

TFX loads in the handler, not at import: `mtrec --help` stays fast (as serving/cli.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mtrec.commands.options import (
    EXAMPLE_HELP,
    SubParsers,
    add_pipeline_options,
    check_flags,
    pipeline_fields,
    pipeline_notes,
)
from mtrec.pipeline import configs
from mtrec.pipeline import kubeflow_checks as checks
from mtrec.pipeline.kubeflow_beam_args import beam_notes, check_beam_args

if TYPE_CHECKING:  # loads TFX, which `mtrec --help` must not wait for
    from mtrec.pipeline.kubeflow_v2_runner import KubeflowSettings

DESCRIPTION = """\
Write the Kubeflow Pipelines v2 / Vertex AI spec (--output) of the pipeline `mtrec run`
runs, with the same model, text-encoder, threshold and cache flags. Everything after
`--` goes to Beam."""
# Values that pass the checks as written (placeholders in capitals were refused as an
# image and a bucket): put your project's registry, project and bucket in their place.
# Dataflow's workers get the same image (--sdk_container_image), or they lack mtrec.
EXAMPLE = """example:
  mtrec compile --image us-docker.pkg.dev/my-project/mtrec/mtrec:0.1 \\
      --pipeline-root gs://my-bucket/pipeline_root --examples-root gs://my-bucket/examples \\
      --serving-model-dir gs://my-bucket/serving_model/mtrec --output mtrec_pipeline.yaml \\
      -- --runner=DataflowRunner --project=my-project --region=us-central1 \\
         --temp_location=gs://my-bucket/tmp \\
         --sdk_container_image=us-docker.pkg.dev/my-project/mtrec/mtrec:0.1

Beam args follow `--`; without them, or without a --runner among them, the container
runs Beam's FnApiRunner. See docs/kubeflow.md."""
DEFAULT_PVC_MOUNT = "/models"


def add_compile_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compile", help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI",
        description=DESCRIPTION, epilog=EXAMPLE, formatter_class=EXAMPLE_HELP,
    )
    add_compile_arguments(p)
    p.set_defaults(func=run_compile, beam_args=None)
    return p


def add_compile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, help="container image with mtrec (Dockerfile)")
    p.add_argument("--pipeline-root", required=True, help="artifact root, e.g. gs://B/root")
    p.add_argument("--examples-root", required=True,
                   help="default of the data_root parameter: holds train/, eval/, catalog/")
    p.add_argument("--serving-model-dir", required=True,
                   help="Pusher base directory read by TF Serving (gs://... or a PVC path)")
    p.add_argument("--schema-path", default=configs.IMAGE_SCHEMA_PATH,
                   help="the curated schema as the pods see it (default: the image's, "
                   "%(default)s)")
    p.add_argument("--pipeline-name", default=configs.PIPELINE_NAME,
                   help="the pipeline's name in Kubeflow / Vertex (default: %(default)s)")
    p.add_argument("--output", default=f"{configs.PIPELINE_NAME}_pipeline.yaml",
                   help=".yaml (kfp.Client, Vertex) or .json (Vertex PipelineJob) "
                   "(default: %(default)s)")
    add_pipeline_options(p)
    remote = p.add_argument_group("training on several machines")
    remote.add_argument("--distribution", choices=configs.DISTRIBUTIONS, default=None,
                        help="the Trainer's tf.distribute strategy (default: one device; "
                        "multi_worker_mirrored with the remote training flags below)")
    remote.add_argument("--vertex-training-region",
                        help="run the Trainer as a Vertex AI custom job in this region "
                        "(chief + workers in --image; distribution: multi_worker_mirrored)")
    remote.add_argument("--vertex-project",
                        help="GCP project of the Vertex custom job (needed with "
                        "--vertex-training-region)")
    remote.add_argument("--vertex-training-replicas", type=int, default=2,
                        help="chief + workers (default: %(default)s)")
    remote.add_argument("--vertex-machine-type", default="n1-standard-8",
                        help="machine type of each replica (default: %(default)s)")
    remote.add_argument("--tfjob-namespace",
                        help="run the Trainer as a Kubeflow TFJob in this namespace "
                        "(chief + workers in --image; distribution: multi_worker_mirrored)")
    remote.add_argument("--tfjob-replicas", type=int, default=2,
                        help="chief + workers (default: %(default)s)")
    remote.add_argument("--tfjob-cpu", default="4",
                        help="CPUs of each TFJob replica, request and limit "
                        "(default: %(default)s)")
    remote.add_argument("--tfjob-memory", default="16Gi",
                        help="memory of each TFJob replica, request and limit "
                        "(default: %(default)s)")
    remote.add_argument("--tfjob-service-account",
                        help="Kubernetes service account of the TFJob replicas (default: "
                        "the namespace's `default`)")
    p.add_argument("--no-runtime-parameters", action="store_true",
                   help="bake every value into the spec instead of pipeline inputs")
    p.add_argument("--implicit-feedback", action="store_true",
                   help="the data's ratings are all one value (clicks, views): TFMA bounds "
                   "only the example count, not rating RMSE or like AUC, which have no "
                   "labels (`mtrec run` decides this from the data)")
    p.add_argument("--no-baseline", action="store_true",
                   help="no latest-blessed-model resolver (needed on KFP OSS, whose v2 "
                   "backend does not implement resolver tasks, so with --serving-pvc and "
                   "--tfjob-namespace); drops the change thresholds")
    p.add_argument("--serving-pvc", help="PVC to mount into the Pusher (Kubeflow; .yaml only)")
    p.add_argument("--serving-pvc-mount",
                   help=f"where --serving-pvc is mounted in the Pusher (default: "
                   f"{DEFAULT_PVC_MOUNT})")


def compile_flags() -> frozenset[str]:
    """Every option string of `mtrec compile` (refused after `--`: check_beam_args)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_compile_arguments(parser)
    return frozenset(s for action in parser._actions for s in action.option_strings)


def settings_from_args(args: argparse.Namespace) -> KubeflowSettings:
    """The KubeflowSettings the parsed flags ask for (`args.beam_args`: after `--`)."""
    from mtrec.components.trainer.tfjob import TFJobTraining
    from mtrec.components.trainer.vertex import VertexTraining
    from mtrec.pipeline import kubeflow_v2_runner as kfv2

    fields = pipeline_fields(args, dict(args.model_config))
    if args.implicit_feedback:  # as `mtrec run` does for data with one rating value
        fields["thresholds"] = fields["thresholds"].for_rating_values(1)
    return kfv2.kubeflow_settings(
        image=args.image,
        pipeline_root=args.pipeline_root,
        examples_root=args.examples_root,
        serving_model_dir=args.serving_model_dir,
        serving_pvc=args.serving_pvc,
        serving_pvc_mount=pvc_mount(args),
        schema_path=args.schema_path,
        pipeline_name=args.pipeline_name,
        beam_pipeline_args=args.beam_args,  # None: the defaults (kfv2.kubeflow_settings)
        distribution=args.distribution,
        vertex_training=VertexTraining(
            region=args.vertex_training_region, image=args.image, project=args.vertex_project,
            replicas=args.vertex_training_replicas, machine_type=args.vertex_machine_type,
        ) if args.vertex_training_region is not None else None,
        tfjob_training=TFJobTraining(
            image=args.image, namespace=args.tfjob_namespace, replicas=args.tfjob_replicas,
            cpu=args.tfjob_cpu, memory=args.tfjob_memory,
            service_account=args.tfjob_service_account,
        ) if args.tfjob_namespace is not None else None,
        runtime_parameters=not args.no_runtime_parameters,
        baseline_model=not args.no_baseline,
        **fields,
    )


def pvc_mount(args: argparse.Namespace) -> str:
    """--serving-pvc-mount, or its default (None until then: given alone, it gets a note)."""
    return DEFAULT_PVC_MOUNT if args.serving_pvc_mount is None else args.serving_pvc_mount


def split_beam_args(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """(our flags, Beam args after `--` or None when there is no `--`)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def check_args(args: argparse.Namespace) -> list[str]:
    """The deployment flags' checks (pipeline/kubeflow_checks.py), before TFX loads:
    a bad image, path, --output or remote-training flag stops in a second, not after
    the ~25 s of imports and in the flag's name, not a dataclass field's. Returns the
    notes to print once every flag passed: what compiles but may not be meant."""
    check_beam_args(args.beam_args, compile_flags())
    paths = checks.storage_paths(
        args.pipeline_root, args.examples_root, args.serving_model_dir, args.schema_path
    )
    checks.check_deployment(
        image=args.image,
        pipeline_name=args.pipeline_name,
        paths=paths,
        serving_pvc=args.serving_pvc,
        serving_pvc_mount=pvc_mount(args),
    )
    checks.check_output(args.output, serving_pvc=args.serving_pvc)
    checks.check_remote_training(
        distribution=args.distribution,
        vertex_region=args.vertex_training_region,
        vertex_project=args.vertex_project,
        vertex_replicas=args.vertex_training_replicas,
        tfjob_namespace=args.tfjob_namespace,
        tfjob_replicas=args.tfjob_replicas,
        tfjob_cpu=args.tfjob_cpu,
        tfjob_memory=args.tfjob_memory,
    )
    if args.tfjob_service_account is not None:
        checks.check_kubernetes_name("--tfjob-service-account", args.tfjob_service_account)
    checks.check_kfp_backend(serving_pvc=args.serving_pvc, tfjob_namespace=args.tfjob_namespace,
                             baseline=not args.no_baseline)
    return [*path_notes(args, paths), *ignored_flag_notes(args),
            *beam_notes(args.beam_args, args.image)]


def path_notes(args: argparse.Namespace, paths: dict[str, str]) -> list[str]:
    """Local paths a pod sees otherwise than this machine (kubeflow_checks.path_notes)."""
    preset = None if args.no_text_encoder else args.text_encoder.get("preset_dir")
    preset = preset if isinstance(preset, str) else None
    local = {**paths, **({"--text-encoder preset_dir": preset} if preset else {})}
    notes = []
    relative = checks.relative_paths(local)
    if relative:  # fine for kfp_local run from here; a pod has another working directory
        named = ", ".join(f"{flag} {local[flag]!r}" for flag in relative)
        notes.append(f"relative path ({named}): a pod resolves it in its working directory "
                     f"({configs.IMAGE_WORKDIR} in the image), kfp_local in the one it runs in")
    return [*notes, *checks.path_notes(paths, serving_pvc=args.serving_pvc, preset_dir=preset)]


def ignored_flag_notes(args: argparse.Namespace) -> list[str]:
    """One line per flag that this combination leaves without effect (they compiled
    silently): the shared pipeline flags' (options.pipeline_notes), then compile's."""
    notes = pipeline_notes(args)
    tfma = {"--rating-rmse-max": args.rating_rmse_max,
            "--rating-rmse-max-increase": args.rating_rmse_max_increase,
            "--relevance-auc-min": args.relevance_auc_min,
            "--relevance-auc-max-decrease": args.relevance_auc_max_decrease}
    given = [flag for flag, value in tfma.items() if value is not None]
    if args.implicit_feedback and given:
        notes.append(f"{', '.join(given)} ignored: with --implicit-feedback TFMA bounds only "
                     "the example count (the ratings are all one value)")
    changes = [flag for flag in ("--rating-rmse-max-increase", "--relevance-auc-max-decrease")
               if tfma[flag] is not None and not args.implicit_feedback]
    changes += [f"--retrieval-thresholds {m}" for m in args.retrieval_thresholds or {}
                if m.endswith("_change")]
    if args.no_baseline and changes:
        notes.append(f"{', '.join(changes)} ignored: --no-baseline compiles no model to "
                     "compare against")
    if args.vertex_project is not None and args.vertex_training_region is None:
        notes.append("--vertex-project ignored: it is the project of the Vertex training job "
                     "that --vertex-training-region asks for")
    if args.serving_pvc_mount is not None and args.serving_pvc is None:
        notes.append("--serving-pvc-mount ignored: it is where --serving-pvc is mounted")
    return notes


def run_compile(args: argparse.Namespace) -> int:
    try:  # flags are checked first, settings when they are built: a bad flag is a message
        notes = check_args(args)
        check_flags(args)  # the pipeline flags, as `mtrec run` checks them
        for note in notes:  # after the checks: a refused flag is one `error:` line
            print(f"note: {note}", file=sys.stderr)
        from mtrec.pipeline import kubeflow_v2_runner as kfv2

        settings = settings_from_args(args)
        kfv2.compile_pipeline(settings, args.output)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0
