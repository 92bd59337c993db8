"""The few computations that depend on the actual input size, done per call.

Each is a plain function of tensors and ints, registered with ``torch.fx.wrap`` so
that ``fx.symbolic_trace`` records it as one call instead of failing on its size
arithmetic; ``torch.export`` and ``torch.compile`` trace through it as Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import fx

from .errors import InputError
from .shapes import (
    same_padding,
    skipped_input,
    stride_for_sizes,
    transposed_padding,
    transposed_stride_for_sizes,
)
from .sizes import apply_steps

__all__ = [
    "contiguous",
    "target_size",
    "pad_same",
    "pad_for_max",
    "max_pool_pads",
    "avg_pool_padded",
    "avg_pool_same",
    "conv_transpose_to",
    "conv_to_size",
    "pool_to_size",
    "adaptive_pool_to",
    "interpolate_to",
    "crop_end",
    "grid_size",
    "tokens_to_map",
    "resample_positions",
    "add_sincos_positions",
    "window_partition",
    "window_merge",
    "window_attention",
    "merge_patches",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_ADAPTIVE: dict[str, dict[int, Callable[..., torch.Tensor]]] = {
    "max": {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d},
    "avg": {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d},
}


def target_size(base_shape: Sequence[int], ratios, absolute) -> tuple[int, ...]:
    """The declared size for this call: ``absolute``, or ``ceil(base / (num / den))`` per dim, then the
    steps of a line sized by the geometry before it (``(num, den, steps)``, see ``neurlink.sizes``)."""
    if absolute is not None:
        return tuple(absolute)
    sizes = []
    for b, (num, den, *steps) in zip(base_shape, ratios):
        size = -((-b * den) // num)
        sizes.append(apply_steps(size, steps[0]) if steps else size)
    return tuple(sizes)


def _flat_pad(pads) -> list[int]:
    # F.pad wants (last dim left, last dim right, previous dim left, ...)
    return [p for left_right in reversed(pads) for p in left_right]


def _same_pads(x, kernel, dilation, stride, static) -> list:
    sizes = x.shape[-len(kernel) :]
    return [
        fixed if fixed is not None else same_padding(n, k, d, s)
        for fixed, n, k, d, s in zip(static, sizes, kernel, dilation, stride)
    ]


def _every_window_sees_a_value(n: int, k: int, d: int, s: int, left: int) -> bool:
    """Whether each window of a dilated pool over ``n`` values padded by ``left`` has a real value
    under one of its taps (only the windows that reach into the padding need looking at)."""
    out = -(-n // s)
    for j in range(out):
        start = j * s - left
        if start >= 0:
            break
        if not any(0 <= start + i * d < n for i in range(k)):
            return False
    for j in range(out - 1, -1, -1):
        start = j * s - left
        if start + (k - 1) * d < n:
            break
        if not any(0 <= start + i * d < n for i in range(k)):
            return False
    return True


def max_pool_pads(sizes, kernel, dilation, stride, pads) -> list:
    """``pads`` moved to the right where a dilated window would see only padding (and return -inf):
    the total is kept (so is the output size); with no padding on the left every window's first tap
    is a real value, so a split that works always exists."""
    fixed = []
    for n, k, d, s, (left, right) in zip(sizes, kernel, dilation, stride, pads):
        if d > 1:
            for candidate in range(left, -1, -1):
                if _every_window_sees_a_value(n, k, d, s, candidate):
                    left, right = candidate, left + right - candidate
                    break
        fixed.append((left, right))
    return fixed


@fx.wrap
def pad_for_max(x: torch.Tensor, kernel, dilation, stride, static) -> torch.Tensor:
    """``-inf`` padding for a dilated max pool to ``ceil(size / stride)``, split so that no window sees
    only padding."""
    sizes = x.shape[-len(kernel) :]
    pads = max_pool_pads(sizes, kernel, dilation, stride, _same_pads(x, kernel, dilation, stride, static))
    if not any(left or right for left, right in pads):
        return x
    return F.pad(x, _flat_pad(pads), value=float("-inf"))


def _average_of_real_values(x, pads, kernel, stride) -> torch.Tensor:
    """Average pooling over the padded input that divides by the number of real values in each
    window, as ``nn.AvgPool2d(count_include_pad=False)`` does, for any padding."""
    rank = len(kernel)
    flat = _flat_pad(pads)
    if not any(flat):
        return _AVG[rank](x, kernel, stride, 0)
    sums = _AVG[rank](F.pad(x, flat), kernel, stride, 0)
    counts = _AVG[rank](F.pad(x.new_ones((1, 1, *x.shape[-rank:])), flat), kernel, stride, 0)
    return sums / counts


@fx.wrap
def avg_pool_padded(x: torch.Tensor, pads, kernel, stride) -> torch.Tensor:
    """Average pooling with a fixed padding (left, right) per dim that averages only real values."""
    return _average_of_real_values(x, pads, kernel, stride)


@fx.wrap
def avg_pool_same(x: torch.Tensor, kernel, stride, static) -> torch.Tensor:
    """Average pooling to ``ceil(size / stride)`` (padding from the size, as ``pad_same``) over real values."""
    return _average_of_real_values(x, _same_pads(x, kernel, (1,) * len(kernel), stride, static), kernel, stride)


@fx.wrap
def pad_same(x: torch.Tensor, kernel, dilation, stride, static, mode: str, value: float = 0.0) -> torch.Tensor:
    """Pad so a strided window gives ``ceil(size / stride)``: dims with a static pair keep it."""
    pads = _same_pads(x, kernel, dilation, stride, static)
    if not any(left or right for left, right in pads):
        return x  # no copy when this size needs no padding
    if mode == "zeros":
        return F.pad(x, _flat_pad(pads), value=value)
    return F.pad(x, _flat_pad(pads), mode=mode)


@fx.wrap
def conv_transpose_to(
    x, weight, bias, base_shape, ratios, absolute, stride, kernel, dilation, groups: int
) -> torch.Tensor:
    """Transposed conv landing exactly on the declared size of this call."""
    rank = len(kernel)
    target = target_size(base_shape, ratios, absolute)
    sizes = x.shape[-rank:]
    relative = stride is not None  # a fixed stride: between two ratios
    if stride is None:
        stride = tuple(_stride(transposed_stride_for_sizes, n, t, "transposed conv") for n, t in zip(sizes, target))
    plans = [
        transposed_padding(n, t, k, d, s, relative=relative)
        for n, t, k, d, s in zip(sizes, target, kernel, dilation, stride)
    ]
    for n, t, s, d, (_, completed, _) in zip(sizes, target, stride, dilation, plans):
        if completed >= max(s, d):  # PyTorch's output_padding must stay below the stride (or the dilation)
            raise InputError(
                f"this transposed conv lands on size {t} (the line it undoes), but from size {n} a stride-{s}"
                f" transposed conv reaches at most {t - completed + max(s, d) - 1}: the lines between them shrink"
                " the map more than their strides (unpadded convs or pools)",
                allowed='"same" convs and pools (the default geometry) between the line it undoes and this one,'
                " or an upsampling that reaches the size: nv.Interpolate[[x, like]]() to the size of a line `like`",
            )
    y = _CONV_T[rank](x, weight, bias, stride, [p[0] for p in plans], [p[1] for p in plans], groups, dilation)
    return crop_end(y, [p[2] for p in plans])


@fx.wrap
def crop_end(y: torch.Tensor, crop) -> torch.Tensor:
    """Cut ``crop[i]`` elements off the end of spatial dim ``i`` (no copy)."""
    for dim, amount in enumerate(crop, start=y.dim() - len(crop)):
        if amount:
            y = y.narrow(dim, 0, y.shape[dim] - amount)
    return y


def _stride(find, n, t, what: str, span: int = 4) -> int:
    stride = find(n, t)
    if stride is None:
        transposed = what == "transposed conv"
        raise InputError(
            f"no stride takes a {what} from size {n} to the declared size {t} for this input",
            allowed=f"input sizes n where a whole stride s gives s * (n - 1) < {t} <= s * n"
            if transposed
            else f"sizes where a whole stride s gives ceil(size / s) == {t} ({_reachable(t, span)}, ...), or an"
            f" adaptive pool (the pool written without a kernel, e.g. nv.MaxPool2d()) to reach {t} from any size",
        )
    return stride


def _reachable(t: int, span: int) -> str:
    """The first sizes that strides up to 4 (and up to the kernel's span) take to size ``t``."""
    spans = ((s * (t - 1) + 1, s * t) for s in range(1, min(span, 4) + 1))
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in spans)


def _sized_padding(x, base_shape, ratios, absolute, kernel, dilation):
    rank = len(kernel)
    target = target_size(base_shape, ratios, absolute)
    sizes = x.shape[-rank:]
    strides = []
    for n, t, k, d in zip(sizes, target, kernel, dilation):
        span = d * (k - 1) + 1
        s = _stride(stride_for_sizes, n, t, "conv or pool", span)
        skipped = skipped_input(n, tuple(target), k, d, s)  # a stride the ratios did not declare
        if skipped is not None:
            raise InputError(
                skipped,
                allowed=f"inputs of sizes up to {span} * {t} on that dim, a kernel as wide as the stride, or an"
                " adaptive pool (the pool written without a kernel, e.g. nv.MaxPool2d()) to reach any size",
            )
        strides.append(s)
    stride = tuple(strides)
    pads = [same_padding(n, k, d, s) for n, k, d, s in zip(sizes, kernel, dilation, stride)]
    return stride, pads


@fx.wrap
def conv_to_size(x, weight, bias, base_shape, ratios, absolute, kernel, dilation, groups: int, mode: str):
    """Conv whose stride is derived from the actual input and target sizes (absolute <-> relative)."""
    stride, pads = _sized_padding(x, base_shape, ratios, absolute, kernel, dilation)
    x = F.pad(x, _flat_pad(pads)) if mode == "zeros" else F.pad(x, _flat_pad(pads), mode=mode)
    return _CONV[len(kernel)](x, weight, bias, stride, 0, dilation, groups)


@fx.wrap
def pool_to_size(x, base_shape, ratios, absolute, kernel, dilation, kind: str, count_include_pad: bool = False):
    """Max/avg pool whose stride is derived from the actual input and target sizes."""
    stride, pads = _sized_padding(x, base_shape, ratios, absolute, kernel, dilation)
    if kind == "max":
        pads = max_pool_pads(x.shape[-len(kernel) :], kernel, dilation, stride, pads)
        x = F.pad(x, _flat_pad(pads), value=float("-inf"))
        return _MAX[len(kernel)](x, kernel, stride, 0, dilation)
    if not count_include_pad:
        return _average_of_real_values(x, pads, kernel, stride)
    x = F.pad(x, _flat_pad(pads))
    return _AVG[len(kernel)](x, kernel, stride, 0)


@fx.wrap
def adaptive_pool_to(x, base_shape, ratios, kind: str):
    """Adaptive pooling to a ratio of the base shape."""
    return _ADAPTIVE[kind][len(ratios)](x, target_size(base_shape, ratios, None))


@fx.wrap
def interpolate_to(x, base_shape, ratios, absolute, mode: str, align_corners):
    """Resample to the declared size of this call; one ratio or size may stand for every dim."""
    rank = x.dim() - 2
    if ratios is not None and len(ratios) == 1:
        ratios = ratios * rank
    if absolute is not None and len(absolute) == 1:
        absolute = absolute * rank
    return F.interpolate(x, size=target_size(base_shape, ratios, absolute), mode=mode, align_corners=align_corners)


@fx.wrap
def interpolate_like(x, like, mode: str, align_corners):
    """Resample ``x`` to the spatial size of ``like`` (a line at the declared shape)."""
    return F.interpolate(x, size=like.shape[2:], mode=mode, align_corners=align_corners)


@fx.wrap
def conv_on_points(x, weight, bias):
    """A 1x1 conv, as the matrix product it is on a 1x1 map (torch's conv path is slower there)."""
    if x.dim() == 4 and x.shape[-2] == 1 and x.shape[-1] == 1:
        return F.linear(x.flatten(1), weight.flatten(1), bias)[:, :, None, None]
    return F.conv2d(x, weight, bias)


def contiguous(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the standard (contiguous) memory format: where a permuted tensor meets a torch kernel that
    mishandles it (``nerves.conv``: a 1x1 strided conv's weight gradient on a channels-last input)."""
    return x.contiguous()


@fx.wrap
def grid_size(base_shape: Sequence[int], ratios) -> tuple[int, ...]:
    """The grid a token line lies on for this call: ``ceil(base / ratio)`` per dim (``target_size``); one
    ratio stands for every dim of the base."""
    if len(ratios) == 1:
        ratios = tuple(ratios) * len(base_shape)
    return target_size(base_shape, ratios, None)


@fx.wrap
def tokens_to_map(x: torch.Tensor, base_shape, ratios, extra: int) -> torch.Tensor:
    """Tokens ``(N, extra + prod(grid), C)`` folded onto their grid as a map ``(N, C, *grid)``, the extra
    tokens left out."""
    grid = grid_size(base_shape, ratios)
    if extra:
        x = x[:, extra:]
    return x.transpose(1, 2).unflatten(2, grid)


@fx.wrap
def resample_positions(weight: torch.Tensor, grid, built, prefix: int) -> torch.Tensor:
    """A learned position embedding ``(1, prefix + prod(built), C)`` for the grid ``grid`` of this call: itself
    at the grid it was made for; otherwise its grid part resampled bicubically, antialiased (as timm's
    ``resample_abs_pos_embed``), the prefix kept. A 1-d sequence takes its first positions instead (a
    table for the longest sequence, as BERT's and GPT's), and is refused beyond it."""
    if len(built) == 1:  # a sequence: positions 0..L-1 of a table of the longest length (BERT's, GPT's)
        length = grid[0]
        # (not checked while torch traces: a symbolic length would be pinned; adding too few positions fails)
        if not torch.compiler.is_compiling() and length > built[0]:
            raise InputError(
                f"a sequence of {length} tokens, but the learned positions are for at most {built[0]}",
                allowed=f"sequences of at most {built[0]} tokens, or a PositionEmbedding built for a longer base",
            )
        return weight[:, : prefix + length]
    # concrete sizes: torch.compile then compiles once per grid (inductor cannot lower an antialiased
    # bicubic resampling to a symbolic size)
    grid = tuple(int(size) for size in grid)
    if grid == tuple(built):
        return weight
    channels = weight.shape[-1]
    # in float32, as timm resamples: CPU kernels of the antialiased modes have no half-precision version
    positions = weight[:, prefix:].float().reshape(1, *built, channels).movedim(-1, 1)
    mode = {1: "linear", 2: "bicubic", 3: "trilinear"}[len(built)]
    positions = F.interpolate(positions, size=grid, mode=mode, align_corners=False, antialias=len(built) == 2)
    positions = positions.movedim(1, -1).reshape(1, -1, channels).to(weight.dtype)
    return torch.cat([weight[:, :prefix], positions], dim=1) if prefix else positions


@fx.wrap
def add_sincos_positions(x: torch.Tensor, grid, prefix: int, temperature: float) -> torch.Tensor:
    """``x`` plus fixed sine-cosine embeddings of its grid tokens' positions: for each grid dim in order, a
    ``C / (2 rank)`` block of sines then one of cosines of the position times ``temperature ** (-i / F)``."""
    grid = tuple(grid)
    channels = x.shape[-1]
    frequencies = channels // (2 * len(grid))
    omega = temperature ** -(torch.arange(frequencies, device=x.device, dtype=torch.float32) / frequencies)
    axes = torch.meshgrid(*(torch.arange(n, device=x.device, dtype=torch.float32) for n in grid), indexing="ij")
    parts = []
    for axis in axes:
        angles = axis.reshape(-1, 1) * omega
        parts += [angles.sin(), angles.cos()]
    embedding = torch.cat(parts, dim=1).to(x.dtype)
    if embedding.shape[1] < channels:  # channels not divisible by 2 * rank: the last ones get none
        embedding = F.pad(embedding, (0, channels - embedding.shape[1]))
    if prefix:
        embedding = F.pad(embedding, (0, 0, prefix, 0))
    return x + embedding


def _window_plan(grid, window, shift) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A 2d grid padded at its end to whole windows, and the shift of each dim: none where one window
    covers the padded grid (torchvision's Swin)."""
    padded = tuple(-(-size // step) * step for size, step in zip(grid, window))
    shifts = tuple(0 if step >= size else s for size, step, s in zip(padded, window, shift))
    return padded, shifts


@fx.wrap
def window_partition(x: torch.Tensor, grid, window, shift) -> torch.Tensor:
    """Tokens ``(N, H * W, C)`` of a 2d grid as windows ``(N * windows, wh * ww, C)``: the grid padded with
    zeros at its end to whole windows, rolled back by the shift, cut into windows in row-major order."""
    (padded_h, padded_w), (shift_h, shift_w) = _window_plan(grid, window, shift)
    (height, width), (wh, ww) = grid, window
    channels = x.shape[-1]
    x = F.pad(x.reshape(x.shape[0], height, width, channels), (0, 0, 0, padded_w - width, 0, padded_h - height))
    if shift_h or shift_w:
        x = torch.roll(x, shifts=(-shift_h, -shift_w), dims=(1, 2))
    x = x.reshape(x.shape[0], padded_h // wh, wh, padded_w // ww, ww, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, channels)


@fx.wrap
def window_merge(windows: torch.Tensor, grid, window, shift) -> torch.Tensor:
    """The inverse of :func:`window_partition`: windows put back in place, rolled forward by the shift,
    the padding cut off, as tokens ``(N, H * W, C)``."""
    (padded_h, padded_w), (shift_h, shift_w) = _window_plan(grid, window, shift)
    (height, width), (wh, ww) = grid, window
    channels = windows.shape[-1]
    x = windows.reshape(-1, padded_h // wh, padded_w // ww, wh, ww, channels).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, padded_h, padded_w, channels)
    if shift_h or shift_w:
        x = torch.roll(x, shifts=(shift_h, shift_w), dims=(1, 2))
    return x[:, :height, :width].reshape(x.shape[0], height * width, channels)


def _shift_mask(padded, window, shifts, like: torch.Tensor) -> torch.Tensor:
    """``(windows, T, T)``: -100 between two tokens of a shifted window that came from different regions of
    the grid (the rolled-in border), 0 elsewhere (torchvision's mask)."""
    regions = []
    for size, step, shift in zip(padded, window, shifts):
        position = torch.arange(size, device=like.device)
        # a shifted dim has three regions: [0, size - window), [size - window, size - shift), [size - shift, size)
        region = (position >= size - step).long() + (position >= size - shift).long() if shift else position * 0
        regions.append(region)
    (padded_h, padded_w), (wh, ww) = padded, window
    labels = regions[0][:, None] * 3 + regions[1][None, :]
    labels = labels.reshape(padded_h // wh, wh, padded_w // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    differ = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(differ.shape, dtype=like.dtype, device=like.device).masked_fill(differ, -100.0)


@fx.wrap
def window_attention(
    qkv: torch.Tensor,
    bias: torch.Tensor,
    grid,
    window,
    shift,
    heads: int,
    logit_scale: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """Attention within each window of packed ``qkv`` ``(N * windows, T, 3C)``, returning ``(N * windows, T, C)``:
    scaled dot products (``logit_scale`` None) or cosine similarities times ``logit_scale`` (Swin v2), plus
    the position ``bias`` ``(1, heads, T, T)``, plus the shifted windows' mask where the grid is shifted."""
    padded, shifts = _window_plan(grid, window, shift)
    count, length = qkv.shape[0], qkv.shape[1]
    q, k, v = qkv.reshape(count, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    if logit_scale is None:
        scores = (q * q.shape[-1] ** -0.5).matmul(k.transpose(-2, -1))
    else:
        scores = F.normalize(q, dim=-1).matmul(F.normalize(k, dim=-1).transpose(-2, -1)) * logit_scale
    scores = scores + bias
    if any(shifts):
        mask = _shift_mask(padded, window, shifts, scores)
        scores = scores.reshape(-1, mask.shape[0], heads, length, length) + mask[None, :, None]
        scores = scores.reshape(count, heads, length, length)
    weights = F.softmax(scores, dim=-1)
    if dropout:
        weights = F.dropout(weights, p=dropout)
    return weights.matmul(v).transpose(1, 2).reshape(count, length, -1)


@fx.wrap
def merge_patches(x: torch.Tensor, grid, stride) -> torch.Tensor:
    """Tokens ``(N, H * W, C)`` of a 2d grid merged ``sh x sw`` at a time into ``(N, ceil(H / sh) * ceil(W / sw),
    sh * sw * C)``: the grid padded with zeros at its end to whole blocks, each block's tokens concatenated
    down each column first (torchvision's Swin at stride 2: ``x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], ...``)."""
    (height, width), (sh, sw) = grid, stride
    channels = x.shape[-1]
    x = F.pad(x.reshape(x.shape[0], height, width, channels), (0, 0, 0, -width % sw, 0, -height % sh))
    parts = [x[:, i::sh, j::sw] for j in range(sw) for i in range(sh)]
    return torch.cat(parts, -1).reshape(x.shape[0], -1, len(parts) * channels)


@fx.wrap
def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the tokens of ``x`` ``(N, L, C)`` where ``mask`` ``(N, L)`` is False (True marks padding)."""
    keep = (~mask).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1)
