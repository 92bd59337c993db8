"""How a line's size follows from the size of the line it reads (pure integer arithmetic, no torch).

A line declared at ratio ``r`` has size ``ceil(base / r)`` as long as every conv and pool before it
pads "same": ``ceil(ceil(b / a) / s) = ceil(b / (a * s))``, so the ratio alone says the size. A conv
or pool written with another geometry (``padding="valid"``, an explicit PyTorch ``padding``, a pool's
``ceil_mode``) computes PyTorch's own output size from its input's actual size, and every line after
it follows from there. Such a line's shape carries its **sizing**: per spatial dim, the ratio of the
last line whose size was still ``ceil(base / ratio)`` and the steps taken since::

    (start, (("window", 3, 2, 0, 0, False), ("ceil", 2)))
    # ceil(base / start), then an unpadded 3-wide window at stride 2 (floor), then a same-padded stride 2

A step is a plain tuple of ints, strings and bools, so the run-time functions that compute a line's
target size (``_runtime.target_size``) take it as a constant under fx and ``torch.export`` and apply it
to symbolic sizes with integer division.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

__all__ = ["Step", "DimSizing", "window_step", "apply_steps", "append_step", "steps_text"]

Step = tuple[Any, ...]  # ("ceil", stride) or ("window", span, stride, left, right, ceil_mode)
DimSizing = tuple[Fraction, tuple[Step, ...]]  # (start ratio, steps after it) for one spatial dim


def window_step(kernel: int, dilation: int, stride: int, left: int, right: int, ceil_mode: bool) -> Step:
    """The step of a conv or pool window, normalised: a window that is exactly ``ceil(n / stride)``
    (a window padded by its span minus one, in floor mode: a 1-wide window unpadded, a 3x3 padded
    by 1) becomes ``("ceil", stride)``, so that lines computing the same sizes carry the same steps."""
    span = dilation * (kernel - 1) + 1
    if stride == 1:
        ceil_mode = False  # at stride 1 both roundings agree
    if left + right == span - 1 and not ceil_mode:
        return ("ceil", stride)  # floor((n - 1) / s) + 1 = ceil(n / s): "same" padding, whatever the split
    return ("window", span, stride, left, right, bool(ceil_mode))


def _window(n: Any, span: int, stride: int, left: int, right: int, ceil_mode: bool) -> Any:
    """PyTorch's output size of a conv or pool window (``torch.nn.Conv2d``/``MaxPool2d``'s formula)."""
    room = n + left + right - span
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    # PyTorch drops a last window that would start in the right padding or past the input
    return out - 1 if (out - 1) * stride >= n + left else out


def apply_steps(n: Any, steps: Sequence[Step]) -> Any:
    """The size after ``steps``, from the size ``n`` of the line they start at (an int or a symbolic int)."""
    for step in steps:
        if step[0] == "ceil":
            n = -(-n // step[1])
        else:
            n = _window(n, *step[1:])
    return n


def append_step(sizing: DimSizing, step: Step) -> DimSizing:
    """``sizing`` followed by ``step``: a "same" stride on a line still at ``ceil(base / ratio)``
    multiplies its ratio (no step to remember); anything else is remembered in order."""
    start, steps = sizing
    if step[0] == "ceil":
        if step[1] == 1:
            return sizing
        if not steps:
            return (start * step[1], ())
    return (start, (*steps, step))


def steps_text(sizing: DimSizing) -> str:
    """One dim's sizing as arithmetic on the base size ``b``: ``floor((ceil(b / 2) - 3) / 2) + 1``."""
    start, steps = sizing
    text = "b" if start == 1 else f"ceil(b / {start})"
    for step in steps:
        if step[0] == "ceil":
            text = f"ceil({text if text.startswith(('ceil(', 'floor(')) and text.endswith(')') else f'({text})'} / {step[1]})"
            continue
        _, span, stride, left, right, ceil_mode = step
        pad = left + right
        room = f"{text} + {pad} - {span}" if pad else f"{text} - {span}"
        rounding = "ceil" if ceil_mode else "floor"
        text = f"{room} + 1" if stride == 1 else f"{rounding}(({room}) / {stride}) + 1"
    return text
