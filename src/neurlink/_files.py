"""A checkpoint's two files on disk: replaced atomically, paired by a save id, the weights' header read by hand.

``save_pretrained`` writes each file to a temporary file beside it and renames it into place
(``os.replace``), so a reader sees a whole old file or a whole new one, never a part; a link in
place of a file (a Hugging Face cache snapshot links to shared blobs) is replaced, never written
through. Two renames are not one, so each save draws a new id and writes it into both files
(``weights_id`` in ``config.json``, ``neurlink_weights_id`` in the safetensors metadata):
``from_pretrained`` refuses a definition beside weights of another save (an interrupted save, or
two at once), which would otherwise load whenever they differ only in parameter-free ways.

The safetensors header is parsed here before safetensors opens the file, so that what the format
leaves open is refused with a clear message: duplicate keys, a dtype no checkpoint of neurlink
holds, a header larger than the format allows.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
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
    """A file opened once and read by that opening alone, as a save may replace the path meanwhile:
    ``path`` names the open file itself (``/proc/self/fd/N``) where the platform can, for readers that
    take a path (safetensors opens its file twice); elsewhere ``check()`` says whether the path still
    names the file opened."""

    def __init__(self, path: Path) -> None:
        self.shown = path
        self.file = open(path, "rb")  # noqa: SIM115  # closed by close()
        by_descriptor = Path(f"/proc/self/fd/{self.file.fileno()}")
        self.path = by_descriptor if by_descriptor.exists() else path
        self._identity = _identity(os.fstat(self.file.fileno()))

    def check(self) -> None:
        try:
            now = _identity(os.stat(self.path))
        except OSError:
            now = None
        if now != self._identity:
            raise PretrainedError(f"{self.shown} was replaced while it was read (a save ran meanwhile): load it again")

    def close(self) -> None:
        self.file.close()


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


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
