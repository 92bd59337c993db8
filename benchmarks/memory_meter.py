"""Peak live tensor memory of a piece of code, measured at operator granularity on any device.

CPU has no ``max_memory_allocated``; this meter follows every tensor an operator returns
(and every tensor alive when it starts, such as the weights) and frees its bytes when the last
tensor using that storage is gone. It measures neurlink and the reference the same way.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class PeakMemory(TorchDispatchMode):
    """``with PeakMemory(*alive) as meter: ...`` then ``meter.peak`` (bytes)."""

    def __init__(self, *alive: torch.Tensor) -> None:
        super().__init__()
        self._users: dict[int, int] = {}  # storage pointer -> number of live tensors on it
        self._bytes: dict[int, int] = {}
        self.live = 0
        self.peak = 0
        for tensor in alive:
            self._track(tensor)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0:
            return
        if key not in self._users:
            self._users[key] = 0
            self._bytes[key] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._users[key] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        self._users[key] -= 1
        if self._users[key] == 0:
            del self._users[key]
            self.live -= self._bytes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out
