"""One error type for both ends of the serving layer.

The server raises `ServingError` from deep inside request handling and the
servicer turns it into a gRPC status in one place; the client raises the same
type for any non-OK status it does not retry, so callers catch one thing.
"""

from __future__ import annotations

import grpc

# tensorflow.error.Code and grpc.StatusCode share numbering (both follow
# google.rpc.Code), so a TF error code converts by value.
_BY_VALUE: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}

# What the server's NOT_FOUND says while a model has no version loaded (TF Serving's
# code for it): the client CLI looks for it to tell "no model yet" from a wrong name.
NO_VERSION_YET = "has no version loaded yet"
# ... and once the version it served was unloaded because its folder went.
NO_VERSION_LEFT = "has no version loaded any more"


class ServingError(Exception):
    """A non-OK serving status: a gRPC code plus a human-readable message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def status_code_from_int(value: int) -> grpc.StatusCode:
    """The gRPC status code with this numeric value (UNKNOWN if out of range)."""
    return _BY_VALUE.get(int(value), grpc.StatusCode.UNKNOWN)


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)
