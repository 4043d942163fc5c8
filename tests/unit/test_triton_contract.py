"""The Open Inference Protocol contract under proto/genre/inference is Triton's, exactly.

Its .proto files are printed from the descriptors in the pinned ``tritonclient`` wheel
(``scripts/triton_proto.py``). Here the wheel is read again: the committed files must be what it
prints, and the code ``make proto`` compiled from them must describe the very messages, fields
and service the wheel does (only the file paths differ), or ``tritonclient`` would not
understand this server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from genre.inference import grpc_service_pb2, model_config_pb2
from scripts.triton_proto import (
    WHEEL_SHA256,
    descriptors,
    proto_source,
    serialized_descriptor,
)
from tests.conftest import REPOSITORY_ROOT

WHEEL = Path(
    os.environ.get(
        "GENRE_TRITONCLIENT_WHEEL",
        Path.home() / ".cache/genre-serve/tritonclient/tritonclient-2.73.0-py3-none-any.whl",
    )
)
PROTOS = REPOSITORY_ROOT / "proto" / "genre" / "inference"


@pytest.fixture(scope="module")
def wheel() -> Path:
    if not WHEEL.is_file():
        pytest.skip(f"tritonclient wheel not found at {WHEEL} (make triton-wheel)")
    return WHEEL


def without_paths(proto: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor with its own and its imports' paths reduced to file names."""
    bare = descriptor_pb2.FileDescriptorProto()
    bare.CopyFrom(proto)
    bare.name = proto.name.rsplit("/", 1)[-1]
    del bare.dependency[:]
    bare.dependency.extend(name.rsplit("/", 1)[-1] for name in proto.dependency)
    return bare


def test_the_committed_protos_are_what_the_wheel_prints(wheel: Path) -> None:
    for proto in descriptors(wheel):
        assert (PROTOS / proto.name).read_text() == proto_source(proto, WHEEL_SHA256), proto.name


def test_the_compiled_contract_describes_what_the_wheel_does(wheel: Path) -> None:
    theirs = {proto.name: proto for proto in descriptors(wheel)}
    for module in (model_config_pb2, grpc_service_pb2):
        ours = without_paths(
            descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        )
        assert ours == without_paths(theirs[ours.name]), ours.name
    service = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {"ModelInfer", "ModelStreamInfer", "ServerLive"} <= set(service.methods_by_name)


def test_a_wheel_with_another_digest_is_refused(tmp_path: Path) -> None:
    impostor = tmp_path / "tritonclient-2.73.0-py3-none-any.whl"
    impostor.write_bytes(b"not the wheel")
    with pytest.raises(ValueError, match="sha256"):
        descriptors(impostor)


def test_the_descriptor_is_read_from_the_source_without_running_it() -> None:
    source = "import os\nDESCRIPTOR = pool.AddSerializedFile(b'\\n\\x03a.p')\nos.exit(1)\n"
    assert serialized_descriptor(source) == b"\n\x03a.p"
    with pytest.raises(ValueError, match="AddSerializedFile"):
        serialized_descriptor("x = 1\n")
