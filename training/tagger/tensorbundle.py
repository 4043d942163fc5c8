"""A reader for TensorFlow's checkpoint format (TensorBundle), so converting the musicnn weights
needs neither TensorFlow nor its 500 MB wheel.

A checkpoint ``prefix`` is two files: ``prefix.index``, a LevelDB-style sorted table mapping each
variable's name to a ``BundleEntryProto`` (dtype, shape, byte offset and length in the data
file), and ``prefix.data-00000-of-00001``, the raw little-endian tensors back to back. The reader
handles what TensorFlow writes for such checkpoints: uncompressed blocks, one data shard, whole
(unsliced) tensors; anything else is refused with a message rather than read wrongly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5  # compression type (1 byte) + masked crc32c (4 bytes)
# TensorFlow DataType enum values this reader maps to numpy.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


class BundleError(ValueError):
    """A checkpoint this reader cannot read faithfully; the message says what."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one variable lives in the data file."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(message: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as bytes."""
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(message, position)
            yield number, value
        elif wire == 2:
            length, position = _varint(message, position)
            yield number, message[position : position + length]
            position += length
        elif wire == 5:
            yield number, struct.unpack_from("<I", message, position)[0]
            position += 4
        elif wire == 1:
            yield number, struct.unpack_from("<Q", message, position)[0]
            position += 8
        else:
            raise BundleError(f"unsupported protobuf wire type {wire}")


def _shape(message: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for number, value in _fields(message):
        if number == 2 and isinstance(value, bytes):  # Dim
            size = dict(_fields(value)).get(1, 0)
            dims.append(int(size) if isinstance(size, int) else 0)
        elif number == 3 and value:
            raise BundleError("a tensor of unknown rank")
    return tuple(dims)


def _entry(name: str, message: bytes) -> BundleEntry:
    values: dict[int, int | bytes] = {}
    for number, value in _fields(message):
        if number == 7:
            raise BundleError(f"{name}: sliced tensors are not supported")
        values[number] = value
    shape = values.get(2, b"")
    return BundleEntry(
        dtype=int(values.get(1, 0)),
        shape=_shape(shape if isinstance(shape, bytes) else b""),
        shard=int(values.get(3, 0)),
        offset=int(values.get(4, 0)),
        size=int(values.get(5, 0)),
    )


def _block(table: bytes, handle: bytes) -> bytes:
    offset, position = _varint(handle, 0)
    size, _ = _varint(handle, position)
    if table[offset + size] != 0:
        raise BundleError("compressed index blocks are not supported")
    return table[offset : offset + size]


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    position, key = 0, b""
    while position < end:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + value_length]
        position += value_length


def read_index(index_file: Path) -> dict[str, BundleEntry]:
    """Every variable of a checkpoint's ``.index`` file, by name."""
    table = index_file.read_bytes()
    if len(table) < FOOTER_BYTES:
        raise BundleError(f"{index_file}: too short for a checkpoint index")
    footer = table[-FOOTER_BYTES:]
    if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
        raise BundleError(f"{index_file}: not a TensorFlow checkpoint index (bad magic)")
    _, position = _varint(footer, 0)  # metaindex offset
    _, position = _varint(footer, position)  # metaindex size
    entries: dict[str, BundleEntry] = {}
    for _, data_handle in _block_entries(_block(table, footer[position:])):
        for key, value in _block_entries(_block(table, data_handle)):
            if key:  # the empty key holds the bundle header
                entries[key.decode()] = _entry(key.decode(), value)
    return entries


def read_checkpoint(prefix: str) -> dict[str, npt.NDArray[np.generic]]:
    """All tensors of the checkpoint at ``prefix`` (``prefix.index`` and its one data shard).

    A string, not a Path: musicnn's prefixes end in a slash (``MSD_musicnn/`` names the files
    ``MSD_musicnn/.index`` and so on), which a Path would drop."""
    index = read_index(Path(f"{prefix}.index"))
    data = Path(f"{prefix}.data-00000-of-00001").read_bytes()
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for name, entry in index.items():
        if entry.shard != 0:
            raise BundleError(f"{name}: lives in shard {entry.shard}; only one is supported")
        if entry.dtype not in DTYPES:
            raise BundleError(f"{name}: TensorFlow dtype {entry.dtype} is not supported")
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder("<")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * dtype.itemsize
        if entry.size != expected or entry.offset + entry.size > len(data):
            raise BundleError(f"{name}: {entry.size} bytes recorded for shape {entry.shape}")
        raw = data[entry.offset : entry.offset + entry.size]
        tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(entry.shape).copy()
    return tensors
