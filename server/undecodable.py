"""Names the field that kept a genre.v1 request from parsing, when the fault is text that is not
UTF-8.

protobuf refuses a whole message whose ``string`` field holds bytes that are not UTF-8 (a title,
a feature name), so the parser alone can only say "not a valid request". Here the bytes are
parsed again as a lenient twin of the same message, every ``string`` field but map keys read as
``bytes``, and the first field that does not decode is named the way every other fault is
(``rows[3].text['title']``), so a caller sees which value to fix.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from genre.v1 import genre_pb2

_PACKAGE = genre_pb2.DESCRIPTOR.package
_LENIENT = f"{_PACKAGE}.lenient"


def explain_undecodable(message_type: str, data: bytes) -> str | None:
    """Why ``data`` is not a valid ``message_type`` when a string field holds text that is not
    UTF-8 (``"rows[3].text['title']: not UTF-8"``); None for any other fault or message."""
    original = genre_pb2.DESCRIPTOR.message_types_by_name.get(message_type.rsplit(".", 1)[-1])
    if original is None or original.full_name != message_type:
        return None
    try:
        lenient = _lenient_class(original.name).FromString(data)
    except DecodeError:
        return None
    return _first_bad_text(lenient, original, "")


def _first_bad_text(message: Message, original: Descriptor, path: str) -> str | None:
    for lenient_field, value in message.ListFields():
        field = original.fields_by_name[lenient_field.name]
        where = f"{path}{'.' if path else ''}{field.name}"
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            reason = _bad_map(value, entry, where)
        elif field.is_repeated:
            reason = next(
                (
                    bad
                    for index, item in enumerate(value)
                    if (bad := _bad_value(item, field, f"{where}[{index}]")) is not None
                ),
                None,
            )
        else:
            reason = _bad_value(value, field, where)
        if reason is not None:
            return reason
    return None


def _bad_map(items: object, entry: Descriptor, where: str) -> str | None:
    """A map's values (its keys stay strings in the twin: a key that is not UTF-8 fails the
    lenient parse too, and is refused without a field name)."""
    value_field = entry.fields_by_name["value"]
    for key, value in items.items():  # type: ignore[attr-defined]
        reason = _bad_value(value, value_field, f"{where}[{key!r}]")
        if reason is not None:
            return reason
    return None


def _bad_value(value: object, field: FieldDescriptor, where: str) -> str | None:
    if field.message_type is not None and isinstance(value, Message):
        return _first_bad_text(value, field.message_type, where)
    if _is_text(field) and isinstance(value, bytes) and not _utf8(value):
        return f"{where}: not UTF-8"
    return None


def _is_text(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_STRING


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@cache
def _lenient_class(name: str) -> type[Message]:
    """The lenient twin of genre.v1 message ``name``: every string field but map keys (which
    protobuf does not allow as bytes) read as bytes."""
    proto = descriptor_pb2.FileDescriptorProto()
    genre_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = f"lenient/{proto.name}"
    proto.package = _LENIENT
    proto.ClearField("service")
    pending = list(proto.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        for field in message.field:
            map_key = message.options.map_entry and field.name == "key"  # keys cannot be bytes
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING and not map_key:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            if field.type_name.startswith(f".{_PACKAGE}."):
                field.type_name = f".{_LENIENT}.{field.type_name[len(_PACKAGE) + 2 :]}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_LENIENT}.{name}"))
