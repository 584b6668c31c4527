"""Request semantics of TF Serving's APIs, independent of the transport.

gRPC, REST and warmup replay all go through these functions, so a request
behaves the same whichever way it arrives. They take an already resolved
`Servable` (the caller pins the version) and raise `ServingError`.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import Message
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from mtrec.serving import tensor_codec
from mtrec.serving.errors import (
    NO_VERSION_LEFT,
    NO_VERSION_YET,
    failed_precondition,
    invalid_argument,
    not_found,
)
from mtrec.serving.model_manager import Servable
from mtrec.serving.registry import ModelRegistry
from mtrec.serving.signature import DEFAULT_SIGNATURE, Signature

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"


MISSING_SPEC = "Missing ModelSpec"  # TF Serving's words (predict_impl.cc and the others)


def resolve_request(models: ModelRegistry, request: Message) -> Servable:
    """`resolve` for a request's model_spec: INVALID_ARGUMENT when it has none, as TF
    Serving's Predict, Classify, Regress and GetModelMetadata answer (not an empty
    name's NOT_FOUND)."""
    return resolve(models, spec_of(request))


def spec_of(request: Message) -> model_pb2.ModelSpec:
    """The request's model_spec; INVALID_ARGUMENT without one (TF Serving's words)."""
    if not request.HasField("model_spec"):
        raise invalid_argument(MISSING_SPEC)
    return request.model_spec


def resolve(models: ModelRegistry, spec: model_pb2.ModelSpec) -> Servable:
    """Pin the servable a request runs on (TF Serving's GetServableHandle)."""
    manager = models.get(spec.name)
    if manager is None:
        raise not_found(f"Servable not found for request: Latest({spec.name}) "
                        f"({models.unknown(spec.name)})")
    servable = manager.current
    if spec.HasField("version"):
        if servable is None or servable.version != spec.version.value:
            raise not_found(
                f"Servable not found for request: Specific({spec.name}, {spec.version.value})"
            )
    elif spec.version_label:
        raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
    if servable is None:  # TF Serving's code and words, then why, for a person
        gone = manager.unloaded
        raise not_found(f"Servable not found for request: Latest({spec.name}): " + (
            f"model '{spec.name}' {NO_VERSION_LEFT}: version {gone[0]} was unloaded because its "
            f"folder {gone[1]} is gone, and no other version is left (watching "
            f"{manager.model_dir})" if gone else
            f"model '{spec.name}' {NO_VERSION_YET} (watching {manager.model_dir})"))
    return servable


def _fill_spec(out: model_pb2.ModelSpec, servable: Servable, signature_name: str) -> None:
    out.name = servable.name
    out.version.value = servable.version
    out.signature_name = signature_name


def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    sig = servable.signature(signature_name)
    outputs = sig.check_output_filter(request.output_filter)
    result = sig.predict(request.inputs, outputs)
    response = predict_pb2.PredictResponse()
    _fill_spec(response.model_spec, servable, signature_name)
    for key, value in result.items():
        tensor_codec.encode_into(response.outputs[key], value, typed=True)
    return response


def predict_bytes(servable: Servable, request: predict_pb2.PredictRequest
                  ) -> bytes | predict_pb2.PredictResponse:
    """`predict`, as PredictResponse wire bytes where the signature can
    (Signature.predict_bytes: the gRPC path); the same answers and errors."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    sig = servable.signature(signature_name)
    outputs = sig.check_output_filter(request.output_filter)
    wire = sig.predict_bytes(request.inputs, outputs, servable.name, servable.version)
    return wire if wire is not None else predict(servable, request)


def serialized_examples(inp: input_pb2.Input, api: str) -> np.ndarray:
    """An Input as the 1-D string tensor of serialized tf.Examples a signature takes.

    With a context, TF Serving prepends the serialized context to each
    example; proto merge semantics then give example features precedence.
    """
    kind = inp.WhichOneof("kind")
    if kind == "example_list":
        records = [ex.SerializeToString() for ex in inp.example_list.examples]
    elif kind == "example_list_with_context":
        ctx = inp.example_list_with_context.context.SerializeToString()
        records = [ctx + ex.SerializeToString() for ex in inp.example_list_with_context.examples]
    else:
        records = []
    if not records:
        raise invalid_argument(f"{api}::input is empty.")
    return np.array(records, dtype=object)


def _example_signature(servable: Servable, model_spec: model_pb2.ModelSpec, method: str,
                       kind: str) -> tuple[str, Signature]:
    """The (name, signature) a Classify or Regress request runs: TF Serving's checks on
    the method name and the one `inputs` tensor, in its order and words."""
    signature_name = model_spec.signature_name or DEFAULT_SIGNATURE
    sig = servable.signatures.get(signature_name)
    if sig is None:
        raise invalid_argument(f"No signature was found with the name: {signature_name}")
    if sig.method_name != method:
        raise invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}"
        )
    _one_input(sig, kind)
    return signature_name, sig


def _one_input(sig: Signature, kind: str) -> None:
    if len(sig.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if "inputs" not in sig.inputs:
        raise failed_precondition(
            f"No {kind} inputs found in SignatureDef: signature '{sig.name}' has inputs "
            f"{sorted(sig.inputs)}"
        )


def classify(
    servable: Servable, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    signature_name, sig = _example_signature(
        servable, request.model_spec, CLASSIFY_METHOD, "classification")
    if len(sig.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    wanted = tuple(k for k in ("classes", "scores") if k in sig.outputs)
    if not wanted:
        raise failed_precondition(
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {sig.name}'
        )
    examples = serialized_examples(request.input, "ClassificationRequest")
    result = sig.run(sig.convert_arrays({"inputs": examples}), wanted)
    batch = len(examples)
    classes, scores = result.get("classes"), result.get("scores")
    for label, arr, kind in (("classes", classes, "S"), ("scores", scores, "f")):
        if arr is None:
            continue
        if arr.ndim != 2:
            raise invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(arr.shape)}"
            )
        if (kind == "S") != (arr.dtype.kind in ("O", "S")):
            raise invalid_argument(
                f"Expected {label} Tensor of {'DT_STRING' if kind == 'S' else 'DT_FLOAT'}."
            )
        if arr.shape[0] != batch:
            raise invalid_argument(
                f"Expected {label} output batch size of {batch}. Got: {arr.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    num_classes = next(arr.shape[1] for arr in (classes, scores) if arr is not None)
    response = classification_pb2.ClassificationResponse()
    _fill_spec(response.model_spec, servable, signature_name)
    for i in range(batch):
        out = response.result.classifications.add()
        for c in range(num_classes):
            cls = out.classes.add()
            if classes is not None:
                cls.label = tensor_codec.as_bytes(classes[i, c]).decode("utf-8", "replace")
            if scores is not None:
                cls.score = float(scores[i, c])
    return response


def regress(
    servable: Servable, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResponse:
    signature_name, sig = _example_signature(
        servable, request.model_spec, REGRESS_METHOD, "regression")
    if len(sig.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if "outputs" not in sig.outputs:
        raise failed_precondition(
            f"No regression outputs found in SignatureDef: signature '{sig.name}' has outputs "
            f"{sorted(sig.outputs)}"
        )
    examples = serialized_examples(request.input, "RegressionRequest")
    values = sig.run(sig.convert_arrays({"inputs": examples}), ("outputs",))["outputs"]
    batch = len(examples)
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {list(values.shape)}"
        )
    if values.shape[0] != batch:
        raise invalid_argument(f"Expected output batch size of {batch}. Got: {values.shape[0]}")
    if values.dtype != np.float32:
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT. Got: {values.dtype}")
    response = regression_pb2.RegressionResponse()
    _fill_spec(response.model_spec, servable, signature_name)
    for value in values.reshape(-1):
        response.result.regressions.add().value = float(value)
    return response


def metadata(
    servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map)
    return response


def model_status(
    models: ModelRegistry, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    spec = spec_of(request)  # get_model_status_impl.cc refuses none too
    manager = models.get(spec.name)
    if manager is None:
        raise not_found(f"Could not find any versions of model {spec.name} "
                        f"({models.unknown(spec.name)})")
    statuses = manager.statuses()
    if not statuses:
        raise not_found(f"Could not find any versions of model {spec.name}")
    if spec.HasField("version"):
        if spec.version.value not in statuses:
            raise not_found(f"Could not find version {spec.version.value} of model {spec.name}")
        statuses = {spec.version.value: statuses[spec.version.value]}
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in sorted(statuses, reverse=True):
        st = statuses[version]
        out = response.model_version_status.add()
        out.version = version
        out.state = st.state
        out.status.error_code = st.code.value[0]
        out.status.error_message = st.message
    return response
