"""TF Serving's gRPC API as the embedded server answers it: the methods it lacks, and a
request without a model_spec (TF Serving's status codes and words)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests import _serving_support as support

pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="the embedded server's own gaps")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    root = support.new_model_root()
    os.symlink(os.path.abspath(support.primary_model_dir()), os.path.join(root, "1"))
    srv = support.start_server(root)
    srv.manager.wait_for_version(1, timeout=120)
    yield srv.target
    srv.stop()


def test_methods_the_embedded_server_lacks_are_unimplemented(target: str) -> None:
    """MultiInference and config reload (TF Serving has both) answer UNIMPLEMENTED here."""
    channel = grpc.insecure_channel(target)
    try:
        request = inference_pb2.MultiInferenceRequest()
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(
                request, timeout=10
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as info:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(), timeout=10
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        unknown = channel.unary_unary("/tensorflow.serving.PredictionService/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as info:
            unknown(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        channel.close()


def test_a_request_without_a_model_spec_is_invalid_as_in_tf_serving(target: str) -> None:
    """TF Serving answers INVALID_ARGUMENT "Missing ModelSpec" (predict_impl.cc,
    classification and regression services, get_model_status_impl.cc, metadata), not an
    empty model name's NOT_FOUND."""
    channel = grpc.insecure_channel(target)
    try:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        calls = {
            "Predict": lambda: prediction.Predict(predict_pb2.PredictRequest(), timeout=10),
            "Classify": lambda: prediction.Classify(
                classification_pb2.ClassificationRequest(), timeout=10),
            "Regress": lambda: prediction.Regress(regression_pb2.RegressionRequest(),
                                                  timeout=10),
            "GetModelMetadata": lambda: prediction.GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(), timeout=10),
            "GetModelStatus": lambda: model_service_pb2_grpc.ModelServiceStub(
                channel).GetModelStatus(get_model_status_pb2.GetModelStatusRequest(),
                                        timeout=10),
        }
        for name, call in calls.items():
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert info.value.details() == "Missing ModelSpec", name
    finally:
        channel.close()
