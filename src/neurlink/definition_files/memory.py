"""What a network read from a file needs in memory, and what the device it is built on has free.

``from_file`` builds on the meta device first; before the real build it compares the bytes of the
meta network's parameters and buffers with the memory available on the target device and refuses a
build that cannot fit, which would otherwise allocate until the system kills the process:

>>> import torch
>>> from torch import nn
>>> tensor_bytes(nn.Linear(1000, 10, device="meta"))  # (1000 * 10 + 10) float32
40040
>>> shown_bytes(3 * 2**40)
'3.0 TiB'
"""

from __future__ import annotations

import os
from itertools import chain

import torch
from torch import nn

__all__ = ["available_bytes", "tensor_bytes", "shown_bytes"]


def tensor_bytes(module: nn.Module) -> int:
    """The bytes of ``module``'s parameters and buffers (a tensor held twice counted once)."""
    return sum(t.numel() * t.element_size() for t in chain(module.parameters(), module.buffers()))


def available_bytes(device: torch.device) -> int | None:
    """The memory a build on ``device`` can take: on the CPU what the system (and a container's memory
    limit) has available, on a CUDA device its free memory and what torch's allocator holds unused;
    None where it is not known (another kind of device, a system that does not say)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    found = _meminfo_available()
    if found is None:
        try:  # the free pages (less than MemAvailable, which counts the page cache it can drop)
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # (Windows has no sysconf; macOS no SC_AVPHYS_PAGES)
            return None
    limit = _cgroup_available()
    return found if limit is None else min(found, limit)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for row in meminfo:
                if row.startswith("MemAvailable:"):
                    return int(row.split()[1]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """What a cgroup v2 memory limit (a container's) leaves, or None without one."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit:
            text = limit.read().strip()
        if not text.isdigit():  # "max": no limit
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as current:
            return max(0, int(text) - int(current.read().strip()))
    except (OSError, ValueError):
        return None


def shown_bytes(count: int) -> str:
    """``count`` bytes as a person reads them: ``512 B``, ``1.5 MiB``, ``3.0 TiB``."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            break
        value /= 1024
    return f"{count} B" if unit == "B" else f"{value:,.1f} {unit}"
