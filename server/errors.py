"""Every failure a caller can see, each class carrying its gRPC status as a class-level fact.

The servicer raises these; one adapter turns them into status and message. Anything that is not
a ``ServiceError`` becomes INTERNAL with a generic message (the traceback goes to the log), so
UNKNOWN never reaches a client and internals never leak.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class ServiceError(Exception):
    """A failure with a precise status; ``str(error)`` is the message the caller reads."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class ModelNotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Overloaded(ServiceError):
    """The queue is full: fail fast so the caller can back off or go to another replica."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class TooLarge(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExpired(ServiceError):
    """The caller's deadline passed before the work reached the model."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Draining(ServiceError):
    """The server is shutting down; the caller should retry on another replica."""

    code = grpc.StatusCode.UNAVAILABLE
