"""Read (and, for tests, write) the official NAS-Bench-101 ``.tfrecord`` files without TensorFlow.

TFRecord framing, per record: ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length)``,
``data``, ``uint32 masked_crc32c(data)``. In the NAS-Bench-101 files each record's data is the JSON list
``[module_hash, epochs, adjacency_digits, "op,op,...", base64(ModelMetrics protobuf)]``; the protobuf is
decoded here with a small wire-format parser (fields from the official ``model_metrics.proto``).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nasloop.errors import DataError

# --- CRC-32C (Castagnoli), the checksum of the TFRecord framing ---------------------------------------------
_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def _crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c():
    """A compiled CRC-32C when one is installed (``google-crc32c`` or ``crc32c``); else ``None``."""
    try:
        import google_crc32c

        return lambda data: int(google_crc32c.value(bytes(data)))
    except ImportError:
        pass
    try:
        import crc32c as _crc32c

        return lambda data: int(_crc32c.crc32c(bytes(data)))
    except ImportError:
        return None


_FAST = _fast_crc32c()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    return _FAST(data) if _FAST is not None else _crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """The masked CRC stored in TFRecord files: rotate right by 15 bits, add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# --- framing -----------------------------------------------------------------------------------------------
def iter_records(path: str | Path, *, verify: bool = True) -> Iterator[bytes]:
    """The payload of every record in a TFRecord file.

    Args:
        path: the ``.tfrecord`` file.
        verify: check every payload's CRC-32C (the pure-Python CRC reads about 8 MB/s, so about a
            minute for ``nasbench_only108.tfrecord``; a compiled ``google-crc32c`` or ``crc32c`` is used
            when installed). The length checksums, which catch a misaligned or truncated file, are
            always checked.

    Raises:
        DataError: a truncated record or a checksum that does not match.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        number = 0
        while True:
            header = fh.read(12)
            if not header:
                return
            number += 1
            if len(header) < 12:
                raise DataError(f"{path.name}: record {number} is truncated (file ends inside its header)")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise DataError(
                    f"{path.name}: record {number} has a bad length checksum: not a TFRecord file, or corrupt"
                )
            data = fh.read(length)
            footer = fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataError(f"{path.name}: record {number} is truncated (expected {length} bytes)")
            if verify and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise DataError(f"{path.name}: record {number} has a bad data checksum (corrupt file)")
            yield data


def write_records(path: str | Path, payloads: Iterable[bytes]) -> Path:
    """Write payloads as a TFRecord file (used by tests and to make small sample files)."""
    path = Path(path)
    with open(path, "wb") as fh:
        for data in payloads:
            length = struct.pack("<Q", len(data))
            fh.write(length + struct.pack("<I", masked_crc32c(length)))
            fh.write(data + struct.pack("<I", masked_crc32c(data)))
    return path


# --- the protobuf wire format (just what model_metrics.proto needs) ------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DataError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def parse_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` for each field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise DataError(f"unsupported protobuf wire type {wire} (field {field})")
        if pos > len(buf):
            raise DataError(f"truncated protobuf field {field}")
        yield field, wire, value


# Field numbers of EvaluationData in model_metrics.proto (all doubles).
_EVAL_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                4: "validation_accuracy", 5: "test_accuracy"}


@dataclass(frozen=True)
class ModelMetrics:
    """The decoded ``ModelMetrics`` message: one dict per evaluation (start, halfway, end of training)."""

    evaluations: tuple[dict[str, float], ...]
    trainable_parameters: int
    total_time: float


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    evaluations: list[dict[str, float]] = []
    params, total = 0, 0.0
    for field, wire, value in parse_fields(buf):
        if field == 1 and wire == 2:
            ev: dict[str, float] = {}
            for f, w, v in parse_fields(value):  # type: ignore[arg-type]
                if f in _EVAL_FIELDS and w == 1:
                    ev[_EVAL_FIELDS[f]] = struct.unpack("<d", v)[0]  # type: ignore[arg-type]
            evaluations.append(ev)
        elif field == 2 and wire == 0:
            params = int(value)  # type: ignore[arg-type]
        elif field == 3 and wire == 1:
            total = struct.unpack("<d", value)[0]  # type: ignore[arg-type]
    return ModelMetrics(tuple(evaluations), params, total)


def _key(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_model_metrics(evaluations: Iterable[dict[str, float]], trainable_parameters: int,
                         total_time: float = 0.0) -> bytes:
    """Inverse of :func:`decode_model_metrics` (for tests and sample files)."""
    number = {name: f for f, name in _EVAL_FIELDS.items()}
    out = bytearray()
    for ev in evaluations:
        body = b"".join(_key(number[k], 1) + struct.pack("<d", float(v)) for k, v in ev.items())
        out += _key(1, 2) + _encode_varint(len(body)) + body
    out += _key(2, 0) + _encode_varint(int(trainable_parameters))
    out += _key(3, 1) + struct.pack("<d", float(total_time))
    return bytes(out)


# --- NAS-Bench-101 records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Nb101Record:
    """One training run of one module at one epoch budget."""

    module_hash: str
    epochs: int
    adjacency: str  # row-major 0/1 digits of the pruned module's k x k matrix
    ops: tuple[str, ...]
    metrics: ModelMetrics


def iter_nb101(path: str | Path, *, verify: bool = True) -> Iterator[Nb101Record]:
    """Every record of ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``."""
    name = Path(path).name
    for number, data in enumerate(iter_records(path, verify=verify), start=1):
        try:
            module_hash, epochs, adjacency, ops, raw = json.loads(data.decode("utf-8"))
            metrics = decode_model_metrics(base64.b64decode(raw))
            record = Nb101Record(str(module_hash), int(epochs), str(adjacency), tuple(str(ops).split(",")), metrics)
        except (ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
            raise DataError(
                f"{name}: record {number} is not a NAS-Bench-101 row "
                f"([hash, epochs, adjacency, ops, base64 metrics]): {exc}"
            ) from None
        yield record


def encode_nb101(record: Nb101Record) -> bytes:
    """The JSON payload of one record, as in the official files."""
    raw = base64.b64encode(
        encode_model_metrics(record.metrics.evaluations, record.metrics.trainable_parameters,
                             record.metrics.total_time)
    ).decode("ascii")
    return json.dumps([record.module_hash, record.epochs, record.adjacency, ",".join(record.ops), raw]).encode()
