"""IDX reader/writer: round trips and every class of malformed file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from tinysnn.data import DataFileError, read_idx, write_idx

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]
SHAPES = [(7,), (3, 5), (4, 28, 28), (2, 3, 4, 5), (0, 3)]


def _random(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g, dtype=dtype)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_round_trip(tmp_path: Path, dtype: torch.dtype, shape: tuple[int, ...], suffix: str) -> None:
    x = _random(shape, dtype)
    path = tmp_path / f"x.idx{suffix}"
    write_idx(path, x)
    y = read_idx(path)
    assert y.dtype == dtype
    assert y.shape == x.shape
    assert torch.equal(y, x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind


def test_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    x = _random((5, 6), torch.uint8)
    gz_no_ext, plain_with_gz_ext = tmp_path / "a", tmp_path / "b.gz"
    write_idx(gz_no_ext, x, compress=True)
    write_idx(plain_with_gz_ext, x, compress=False)
    assert gz_no_ext.read_bytes()[:2] == b"\x1f\x8b"
    assert plain_with_gz_ext.read_bytes()[:2] == b"\x00\x00"
    assert torch.equal(read_idx(gz_no_ext), x)
    assert torch.equal(read_idx(plain_with_gz_ext), x)


def test_known_bytes(tmp_path: Path) -> None:
    """Big-endian layout matches the format spec byte for byte."""
    path = tmp_path / "x"
    path.write_bytes(_header(0x0B, (2, 2)) + bytes.fromhex("0001 ffff 0100 8000"))
    assert read_idx(path).tolist() == [[1, -1], [256, -32768]]


def test_overwrite_is_atomic_replacement(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    write_idx(path, torch.zeros(3, dtype=torch.uint8))
    write_idx(path, torch.ones(4, dtype=torch.int32))
    assert read_idx(path).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float16])
def test_write_rejects_unsupported_dtype(tmp_path: Path, dtype: torch.dtype) -> None:
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", torch.zeros(3, dtype=dtype))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(), (1, 1, 1, 1, 1)], ids=str)
def test_write_rejects_bad_rank(tmp_path: Path, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", torch.zeros(shape, dtype=torch.uint8))


GOOD_PAYLOAD = bytes(range(6))

BAD_FILES = {
    "empty": b"",
    "short_header": b"\x00\x00\x08",
    "wrong_magic": b"\x01\x00\x08\x01" + struct.pack(">I", 6) + GOOD_PAYLOAD,
    "wrong_dtype_code": _header(0x0A, (6,)) + GOOD_PAYLOAD,
    "zero_dims": b"\x00\x00\x08\x00" + GOOD_PAYLOAD,
    "too_many_dims": _header(0x08, (1, 1, 1, 1, 6)) + GOOD_PAYLOAD,
    "truncated_dims": _header(0x08, (2, 3))[:-2],
    "truncated_payload": _header(0x08, (2, 3)) + GOOD_PAYLOAD[:-1],
    "trailing_bytes": _header(0x08, (2, 3)) + GOOD_PAYLOAD + b"\x00",
    "truncated_payload_int32": _header(0x0C, (2,)) + bytes(7),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("content", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_malformed_file(tmp_path: Path, content: bytes, gz: bool) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "delete it and run `make data`" in str(info.value)


def _good_gz() -> bytes:
    return gzip.compress(_header(0x08, (1000,)) + bytes(range(256)) * 3 + bytes(232))


CORRUPT_GZ = {
    "truncated_stream": _good_gz()[:-20],
    "garbage_after_magic": b"\x1f\x8b" + b"\xde\xad\xbe\xef" * 8,
    "bad_crc": _good_gz()[:-8] + b"\x00\x00\x00\x00" + _good_gz()[-4:],
}


@pytest.mark.parametrize("content", CORRUPT_GZ.values(), ids=CORRUPT_GZ.keys())
def test_corrupt_gzip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "train-images-idx3-ubyte"
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "make data" in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="not found"):
        read_idx(tmp_path)
