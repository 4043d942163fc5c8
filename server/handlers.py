"""Registers the servicer with request parsing that cannot fail the wrong way.

The generated ``add_GenreClassifierServicer_to_server`` parses requests with ``FromString``;
bytes that are not a valid message then surface as UNKNOWN (unary) or INTERNAL (streams), with
protobuf's internals in the message. Here every method is registered from the service descriptor
with a tolerant parser that turns undecodable bytes into a ``MalformedMessage``, which the
servicer answers with INVALID_ARGUMENT like any other bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from genre.v1 import genre_pb2
from server.errors import InvalidArgument
from server.undecodable import explain_undecodable

SERVICE = genre_pb2.DESCRIPTOR.services_by_name["GenreClassifier"]


@dataclass(frozen=True)
class MalformedMessage:
    """Stands in for a request whose bytes did not parse (kept, to say why)."""

    message_type: str
    data: bytes = b""


MessageT = TypeVar("MessageT", bound=Message)


def parsed(request: MessageT | MalformedMessage) -> MessageT:
    """The request itself, or INVALID_ARGUMENT naming the message type that failed to parse."""
    if isinstance(request, MalformedMessage):
        reason = explain_undecodable(request.message_type, request.data)
        raise InvalidArgument(
            reason or f"request: the bytes are not a valid {request.message_type}"
        )
    return request


def _tolerant_parser(message_class: type[Message]) -> Callable[[bytes], Any]:
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes) -> Message | MalformedMessage:
        try:
            return message_class.FromString(data)
        except DecodeError:
            return MalformedMessage(name, data)

    return parse


def add_servicer(
    servicer: object,
    server: grpc.aio.Server,
    service: ServiceDescriptor = SERVICE,
    messages: ModuleType = genre_pb2,
) -> None:
    """Registers every RPC of ``service`` (``genre.v1.GenreClassifier`` by default) that
    ``servicer`` has a method for; gRPC answers the others UNIMPLEMENTED."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        behaviour = getattr(servicer, method.name, None)
        if behaviour is None:
            continue
        request_class: type[Message] = getattr(messages, method.input_type.name)
        response_class: type[Message] = getattr(messages, method.output_type.name)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            behaviour,
            request_deserializer=_tolerant_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    # Pre-registered methods skip the generic lookup per call, as the generated code does
    # (grpc-stubs predates this method).
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]
