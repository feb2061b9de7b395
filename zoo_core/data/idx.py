"""A strict reader of the IDX format of MNIST and Fashion-MNIST (LeCun et al., "The MNIST
database of handwritten digits"), gzip-compressed or not.

An IDX file is: two zero bytes; a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B
int16, 0x0C int32, 0x0D float32, 0x0E float64); the number of dimensions; each dimension
as a big-endian uint32; then the values, big-endian, in row-major order, and nothing else.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from zoo_core.data.files import check_sha256, read_file
from zoo_core.errors import CorruptDatasetError

DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """The array an IDX file holds (read-only, a view of ``data``).

    Raises:
        CorruptDatasetError: bad magic number, unknown type code, no dimensions, or a
            byte count other than the header's dimensions imply; the message names
            ``source``.
    """
    if len(data) < 4:
        raise CorruptDatasetError(f"{source}: {len(data)} bytes is too short for an IDX file")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in DTYPES:
        raise CorruptDatasetError(
            f"{source}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000, a type code "
            f"in {', '.join(f'0x{c:02X}' for c in DTYPES)} and the number of dimensions)"
        )
    if ndim == 0:
        raise CorruptDatasetError(f"{source}: the IDX header declares no dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDatasetError(f"{source}: truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        how = "truncated" if len(data) < expected else "has trailing bytes"
        raise CorruptDatasetError(
            f"{source}: IDX file {how}: {len(data)} bytes, but its header (dimensions "
            f"{'x'.join(map(str, dims))}, {dtype.itemsize}-byte values) implies {expected}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: Path, files: dict[str, str], known: dict[str, str] | None = None) -> np.ndarray:
    """Read ``path`` (decompressed when its name ends in ``.gz``), record its sha256 in
    ``files`` and parse it.

    Args:
        known: sha256 of the decompressed IDX bytes by file name without ``.gz``; a file
            named there must match.

    Raises:
        CorruptDatasetError: a broken gzip stream, a checksum mismatch or a malformed IDX
            file; the message names ``path``.
    """
    data = read_file(path, files)
    name = path.name.removesuffix(".gz")
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDatasetError(
                f"{path}: not a valid gzip file ({exc}); replace it with an intact copy"
            ) from None
    if known and name in known:
        check_sha256(path, data, known[name], "the IDX content")
    return parse_idx(data, str(path))
