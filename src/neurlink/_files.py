"""A checkpoint's two files on disk: replaced atomically, paired by a save id, the weights' header read by hand.

``save_pretrained`` writes each file to a temporary file beside it and renames it into place
(``os.replace``), so a reader sees a whole old file or a whole new one, never a part; a link in
place of a file (a Hugging Face cache snapshot links to shared blobs) is replaced, never written
through. Two renames are not one, so each save draws a new id and writes it into both files
(``weights_id`` in ``config.json``, ``neurlink_weights_id`` in the safetensors metadata):
``from_pretrained`` refuses a definition beside weights of another save (an interrupted save, or
two at once), which would otherwise load whenever they differ only in parameter-free ways.

The safetensors file is read here, through one opening (``Pinned``): its header parsed by hand, so
that what the format leaves open is refused with a clear message (duplicate keys, a dtype no checkpoint
of neurlink holds, a header larger than the format allows, impossible shapes), and each tensor read into
memory of its own (a tensor mapped from the file would change if the file were written in place).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

import torch

from ._config import _DTYPES
from .errors import PretrainedError

__all__ = ["new_weights_id", "replace_atomically", "read_header", "Pinned", "WEIGHTS_ID_KEY"]

WEIGHTS_ID_KEY = "neurlink_weights_id"  # in the safetensors metadata
_MAX_HEADER = 100 * 2**20  # safetensors' own limit on its JSON header
_MAX_ELEMENTS = 2**48  # of one tensor (a petabyte of bytes): the file must hold them, so only a lie claims more

SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file at ``path`` (a size given by stat is not trusted:
    0 in /proc). Opened without blocking, so a FIFO put in its place raises instead of waiting for a writer;
    anything but a regular file raises ``IsADirectoryError`` or ``OSError``."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path}: is a directory")
        if not stat.S_ISREG(mode):
            raise OSError(f"{path}: is not a regular file (a FIFO, a device or a socket)")
        return stream.read(limit + 1)


def new_weights_id() -> str:
    return uuid.uuid4().hex


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` beside ``path``, flushed to disk, then renamed over ``path`` (a file or a link)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it the file
        os.replace(temporary, path)
    except BaseException:  # Ctrl-C included: no temporary file left behind
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself on disk (not every platform opens a directory)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class Pinned:
    """A weights file opened once and read by that opening alone: a save may replace the path meanwhile
    (safetensors' own reader opens the path a second time for the data, which mixed two saves), and the
    tensors read are copies, never a mapping of the file."""

    def __init__(self, path: Path) -> None:
        self.shown = path
        self.file = open(path, "rb")  # noqa: SIM115  # closed by close()
        self._size = os.fstat(self.file.fileno()).st_size
        self.offsets: dict[str, tuple[int, int]] = {}  # each tensor's bytes in the file (read_header)

    def tensor(self, key: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        """A tensor of its own memory holding ``key``'s bytes, read from the file opened (never a view
        of a mapping of the file, which would change if the file were written in place later)."""
        begin, end = self.offsets[key]
        tensor = torch.empty(shape, dtype=dtype)
        size = tensor.numel() * tensor.element_size()
        if end - begin != size or begin < 8 or end > self._size:
            raise PretrainedError(
                f"{self.shown}: not a readable safetensors file: tensor {key[:80]!r} has {end - begin} bytes"
                f" at {begin}..{end} of {self._size}, where {size} are needed"
            )
        if size:
            self.file.seek(begin)
            data = bytearray(size)
            if self.file.readinto(data) != size:
                raise PretrainedError(f"{self.shown}: not a readable safetensors file: it ends inside {key[:80]!r}")
            tensor.view(-1).view(torch.uint8).copy_(torch.frombuffer(data, dtype=torch.uint8))
        return tensor

    def close(self) -> None:
        self.file.close()


def read_header(
    pinned: Pinned,
) -> tuple[dict[str, tuple[torch.dtype, tuple[int, ...]]], dict[str, str]]:
    """Each tensor's dtype and shape, and the metadata, from a safetensors file's header."""
    path = pinned.shown

    def fail(reason: str) -> PretrainedError:
        return PretrainedError(f"{path}: not a readable safetensors file: {reason}")

    file = pinned.file  # the bytes of the file opened, whatever the path names now
    file.seek(0)
    start = file.read(8)
    if len(start) < 8:
        raise fail("it is shorter than a safetensors header")
    (length,) = struct.unpack("<Q", start)
    if length > _MAX_HEADER:
        raise fail(f"its header claims {length} bytes (safetensors allows {_MAX_HEADER})")
    text = file.read(length)
    if len(text) < length:
        raise fail(f"its header claims {length} bytes, the file holds {len(text)} after the first 8")
    try:
        data = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as error:
        raise fail(str(error)) from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise fail(f"its header is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise fail("its header is not a JSON object")
    metadata = data.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise fail("its __metadata__ is not an object of strings")
    header = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
            raise fail(f"tensor {key!r} has no dtype")
        dtype, shape = entry["dtype"], entry.get("shape")
        if dtype not in SAFETENSORS_DTYPES:
            raise fail(
                f"tensor {key!r} is of dtype {dtype[:20]!r}, which no neurlink checkpoint holds"
                f" (neurlink writes {', '.join(SAFETENSORS_DTYPES)})"
            )
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise fail(f"tensor {key!r} has no shape of non-negative ints")
        if len(shape) > 64 or math.prod(shape) > _MAX_ELEMENTS:  # (torch would overflow making it, even on meta)
            raise fail(f"tensor {key[:80]!r} claims a shape of {math.prod(shape):.3g} elements")
        header[key] = (_DTYPES[SAFETENSORS_DTYPES[dtype]], tuple(shape))
        offsets = entry.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)):
            raise fail(f"tensor {key[:80]!r} has no data_offsets [begin, end]")
        pinned.offsets[key] = (8 + length + offsets[0], 8 + length + offsets[1])
    return header, metadata


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(f"the key {key[:80]!r} appears twice in its header (which tensor is meant?)")
        seen.add(key)
    return dict(pairs)
