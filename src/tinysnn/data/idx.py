"""Reading and writing IDX files (the MNIST file format), plain or gzip-compressed.

An IDX file is a 4-byte magic ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimension sizes, then the payload in row-major order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..results import atomic_write

__all__ = ["DataFileError", "read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIMS = 4

# IDX dtype code -> big-endian numpy dtype of the payload.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TORCH_TO_CODE: dict[torch.dtype, int] = {
    torch.uint8: 0x08,
    torch.int8: 0x09,
    torch.int16: 0x0B,
    torch.int32: 0x0C,
    torch.float32: 0x0D,
    torch.float64: 0x0E,
}


class DataFileError(RuntimeError):
    """A dataset file is missing or malformed. The message names the file and the fix."""


def _corrupt(path: Path, problem: str) -> DataFileError:
    return DataFileError(f"{path}: {problem}. The file is corrupt; delete it and run `make data`.")


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (gzip detected by its magic bytes) into a tensor of its dtype and shape.

    Raises:
        DataFileError: the file is missing, is not valid IDX, or its payload size does not
            match its header (truncated or trailing bytes), or its gzip stream is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found. Run `make data` to fetch the datasets.")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt(path, f"invalid gzip data ({exc})") from exc

    if len(raw) < 4:
        raise _corrupt(path, f"only {len(raw)} bytes, too short for an IDX header")
    zero0, zero1, code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0:
        raise _corrupt(path, f"bad IDX magic {raw[:4].hex()} (expected 0000<dtype><ndim>)")
    if code not in _CODE_TO_DTYPE:
        raise _corrupt(path, f"unknown IDX dtype code 0x{code:02x}")
    if not 1 <= ndim <= _MAX_DIMS:
        raise _corrupt(path, f"IDX header claims {ndim} dimensions (expected 1..{_MAX_DIMS})")

    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise _corrupt(path, "truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _CODE_TO_DTYPE[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        kind = "truncated payload" if actual < expected else "trailing bytes after payload"
        raise _corrupt(path, f"{kind}: header {list(dims)} needs {expected} bytes, found {actual}")

    array = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")))


def write_idx(path: str | Path, tensor: torch.Tensor, compress: bool | None = None) -> None:
    """Write ``tensor`` as an IDX file, atomically (temp file in the same directory, then rename).

    Args:
        path: destination file.
        tensor: 1- to 4-D tensor of dtype uint8, int8, int16, int32, float32 or float64.
        compress: gzip the file; ``None`` means gzip iff ``path`` ends with ``.gz``.

    Raises:
        ValueError: unsupported dtype or number of dimensions.
    """
    path = Path(path)
    if tensor.dtype not in _TORCH_TO_CODE:
        supported = ", ".join(str(d) for d in _TORCH_TO_CODE)
        raise ValueError(f"IDX cannot store dtype {tensor.dtype}; supported: {supported}")
    if not 1 <= tensor.dim() <= _MAX_DIMS:
        raise ValueError(f"IDX needs 1..{_MAX_DIMS} dimensions, got shape {tuple(tensor.shape)}")
    if compress is None:
        compress = path.suffix == ".gz"

    code = _TORCH_TO_CODE[tensor.dtype]
    array = tensor.detach().cpu().numpy().astype(_CODE_TO_DTYPE[code], copy=False)
    data = struct.pack(f">BBBB{tensor.dim()}I", 0, 0, code, tensor.dim(), *array.shape)
    data += array.tobytes(order="C")
    if compress:
        data = gzip.compress(data, mtime=0)

    atomic_write(path, lambda tmp: tmp.write_bytes(data))
