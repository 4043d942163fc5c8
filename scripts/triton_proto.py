"""Writes the Open Inference Protocol contract (KServe v2, as Triton ships it) as .proto files.

Triton's ``grpc_service.proto`` and ``model_config.proto`` travel in the ``tritonclient`` wheel on
PyPI only as generated Python, each holding its file's serialized descriptor. This reads those
bytes from the pinned wheel (checked by sha256, never imported: its code targets protobuf 6) and
prints each descriptor back as proto3 source, so ``scripts/gen_proto.sh`` compiles the very same
messages and service with this project's protoc. Comments do not survive (descriptors carry none);
every name, number, type and the package ``inference`` do, which is all the wire and
``tritonclient`` see.

    .venv/bin/python scripts/triton_proto.py --wheel WHEEL --out proto/genre/inference
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2

PACKAGE = "tritonclient==2.73.0"
WHEEL_SHA256 = "1f5cec19b0568e037ec4d716ae702984b3ab93e35f72b8f72c5135374dd2be9a"
SOURCES = {  # the generated module in the wheel -> the .proto file it was made from
    "tritonclient/grpc/model_config_pb2.py": "model_config.proto",
    "tritonclient/grpc/service_pb2.py": "grpc_service.proto",
}
IMPORT_PREFIX = "genre/inference/"  # where the files live under proto/, as imports name them
Field = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    Field.TYPE_DOUBLE: "double", Field.TYPE_FLOAT: "float", Field.TYPE_INT64: "int64",
    Field.TYPE_UINT64: "uint64", Field.TYPE_INT32: "int32", Field.TYPE_FIXED64: "fixed64",
    Field.TYPE_FIXED32: "fixed32", Field.TYPE_BOOL: "bool", Field.TYPE_STRING: "string",
    Field.TYPE_BYTES: "bytes", Field.TYPE_UINT32: "uint32", Field.TYPE_SFIXED32: "sfixed32",
    Field.TYPE_SFIXED64: "sfixed64", Field.TYPE_SINT32: "sint32", Field.TYPE_SINT64: "sint64",
}  # fmt: skip


def serialized_descriptor(source: str) -> bytes:
    """The bytes literal passed to ``AddSerializedFile`` in a generated module's source."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise ValueError("no AddSerializedFile(b'...') call in the module")


def descriptors(wheel: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256} ({PACKAGE})")
    found = []
    with zipfile.ZipFile(wheel) as archive:
        for member, name in SOURCES.items():
            proto = descriptor_pb2.FileDescriptorProto.FromString(
                serialized_descriptor(archive.read(member).decode("utf-8"))
            )
            if proto.name != name:
                raise ValueError(f"{member} describes {proto.name}, expected {name}")
            found.append(proto)
    return found


def field_type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    return SCALARS.get(field.type) or field.type_name  # a fully qualified ".inference.X"


def message_lines(message: descriptor_pb2.DescriptorProto, indent: str = "") -> Iterator[str]:
    yield f"{indent}message {message.name} {{"
    inner = indent + "  "
    entries = {nested.name: nested for nested in message.nested_type if nested.options.map_entry}
    for enum in message.enum_type:
        yield from enum_lines(enum, inner)
    for nested in message.nested_type:
        if not nested.options.map_entry:
            yield from message_lines(nested, inner)
    real_oneofs = {
        field.oneof_index
        for field in message.field
        if field.HasField("oneof_index") and not field.proto3_optional
    }
    opened: set[int] = set()
    fields = list(message.field)
    for position, field in enumerate(fields):
        if field.HasField("oneof_index") and field.oneof_index in real_oneofs:
            index = field.oneof_index
            if index in opened:
                continue
            opened.add(index)
            yield f"{inner}oneof {message.oneof_decl[index].name} {{"
            for member in fields[position:]:
                if member.HasField("oneof_index") and member.oneof_index == index:
                    yield f"{inner}  {field_type(member)} {member.name} = {member.number};"
            yield f"{inner}}}"
            continue
        yield f"{inner}{field_line(field, entries)}"
    for reserved in message.reserved_range:
        end = reserved.end - 1
        yield f"{inner}reserved {reserved.start}" + (f" to {end};" if end > reserved.start else ";")
    for name in message.reserved_name:
        yield f'{inner}reserved "{name}";'
    yield f"{indent}}}"


def field_line(
    field: descriptor_pb2.FieldDescriptorProto, entries: dict[str, descriptor_pb2.DescriptorProto]
) -> str:
    entry = entries.get(field.type_name.rsplit(".", 1)[-1]) if field.type_name else None
    if entry is not None and field.label == Field.LABEL_REPEATED:
        key, value = entry.field
        return f"map<{field_type(key)}, {field_type(value)}> {field.name} = {field.number};"
    label = (
        "repeated "
        if field.label == Field.LABEL_REPEATED
        else "optional "
        if field.proto3_optional
        else ""
    )
    return f"{label}{field_type(field)} {field.name} = {field.number};"


def enum_lines(enum: descriptor_pb2.EnumDescriptorProto, indent: str = "") -> Iterator[str]:
    yield f"{indent}enum {enum.name} {{"
    if enum.options.allow_alias:
        yield f"{indent}  option allow_alias = true;"
    for value in enum.value:
        yield f"{indent}  {value.name} = {value.number};"
    yield f"{indent}}}"


def proto_source(proto: descriptor_pb2.FileDescriptorProto, digest: str) -> str:
    lines = [
        f"// {proto.name} of the Open Inference Protocol as {PACKAGE} ships it (BSD-3-Clause,",
        "// NVIDIA), printed from the descriptor in that wheel (sha256",
        f"// {digest}) by scripts/triton_proto.py",
        "// (`make triton-proto`). Generated: do not edit; comments do not survive the trip.",
        'syntax = "proto3";',
        "",
        f"package {proto.package};",
        "",
    ]
    lines += [f'import "{IMPORT_PREFIX}{dependency}";' for dependency in proto.dependency]
    if proto.dependency:
        lines.append("")
    for enum in proto.enum_type:
        lines += [*enum_lines(enum), ""]
    for message in proto.message_type:
        lines += [*message_lines(message), ""]
    for service in proto.service:
        lines.append(f"service {service.name} {{")
        for method in service.method:
            request = ("stream " if method.client_streaming else "") + method.input_type
            response = ("stream " if method.server_streaming else "") + method.output_type
            lines.append(f"  rpc {method.name}({request}) returns ({response}) {{}}")
        lines += ["}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for proto in descriptors(args.wheel):
        (args.out / proto.name).write_text(proto_source(proto, WHEEL_SHA256))
    return 0


if __name__ == "__main__":
    sys.exit(main())
