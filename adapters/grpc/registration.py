"""How the servicers are put on a grpc.aio server: each method's request deserializer (the
message, the message and its bytes, or the bytes unparsed) and response serializer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from adapters.grpc.errors import Undecodable
from adapters.grpc.gen.onestop.settlement.v1 import settlement_pb2 as pb
from adapters.grpc.packedwire import NO_VIEWS, read_stream_request

#: methods whose messages reach the servicer with their bytes (``Received``)
KEEP_BYTES = frozenset(
    {pb.DESCRIPTOR.services_by_name["SettlementService"].full_name + ".SettleStream"}
)
#: the methods whose servicer is handed the request's bytes unparsed (it reads them itself,
#: ``adapters.grpc.requestwire``, and parses them with upb only when that does not take them)
RAW_BYTES = frozenset(
    pb.DESCRIPTOR.services_by_name["SettlementService"].full_name + m
    for m in (".PreSettle", ".Settle")
)


class Received(NamedTuple):
    """A stream message and the bytes it was parsed from (``_deserializer(keep=True)``): the
    SettleStream servicer hands those bytes to the stream worker as they came. ``cut``: the
    fields read as views of those bytes, left empty in the message (``packedwire``)."""

    message: Any
    data: bytes
    cut: Mapping[str, memoryview] = NO_VIEWS


def _deserializer(cls: Any, keep: bool = False) -> Callable[[bytes], Any]:
    """``cls.FromString``, but bytes that are not such a message give an ``Undecodable`` (the
    servicer raises it: INVALID_ARGUMENT) instead of an exception inside gRPC (UNKNOWN for a
    unary call, INTERNAL for a stream message, with a Python class name in the message).
    ``keep``: the message comes as ``Received`` (the message and its bytes; a SettleStream
    request with its item columns as views of the bytes, ``packedwire``)."""
    name = cls.DESCRIPTOR.full_name
    stream = cls is pb.SettleStreamRequest

    def parse(data: bytes) -> Any:
        try:
            if stream and keep:
                message, cut = read_stream_request(data)
                return Received(message, data, cut)
            return Received(cls.FromString(data), data) if keep else cls.FromString(data)
        except DecodeError:
            return Undecodable(name)

    return parse


#: a message class's instances (``_parsed`` returns what it is given the class of)
M = TypeVar("M", bound=Message)


def _parsed(cls: type[M], data: bytes) -> M:
    """``cls.FromString(data)``; Undecodable (raised) for bytes that are not such a message."""
    got = _deserializer(cls)(data)
    if isinstance(got, Undecodable):
        raise got
    return got


def _serializer(cls: Any) -> Callable[[Any], bytes]:
    """``cls.SerializeToString``; an answer that already is bytes (the stream worker's, a
    serialized ``cls``) goes out as it is."""
    serialize = cls.SerializeToString

    def out(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return out


def add_servicer(server: grpc.aio.Server, servicer: Any, service: str, module: Any = pb) -> None:
    """Register a servicer's methods as the generated ``add_*_to_server`` does, with the
    deserializers above. ``module``: the generated ``*_pb2`` module declaring the service."""
    desc = module.DESCRIPTOR.services_by_name[service]
    handlers = {}
    for m in desc.methods:
        kind = (
            grpc.stream_stream_rpc_method_handler
            if m.client_streaming and m.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        if m.client_streaming != m.server_streaming:
            raise NotImplementedError(f"{m.full_name}: only unary and bidi methods are served")
        handlers[m.name] = kind(
            getattr(servicer, m.name),
            request_deserializer=None
            if m.full_name in RAW_BYTES
            else _deserializer(getattr(module, m.input_type.name), keep=m.full_name in KEEP_BYTES),
            response_serializer=_serializer(getattr(module, m.output_type.name)),
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(desc.full_name, handlers),)
    )
    server.add_registered_method_handlers(desc.full_name, handlers)


# --------------------------------------------------------------------------- warm-up
