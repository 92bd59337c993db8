"""Ultralytics' YOLOv8 and YOLO11 blocks in the grammar, each computing what Ultralytics' module computes.

Ultralytics' ``Conv`` (a conv without bias, padded ``k // 2``, BatchNorm of eps 0.001 and momentum
0.03, SiLU) is a ``Conv2d_BN_ReLU`` line with :func:`yolo_norm` and ``nn.SiLU``; :data:`conv` writes
it short, with a selector and a tag as any nerve takes them (``conv[0, "cv1"](1)``). The blocks are
nerves whose channels come from the lines, as every zoo block's: a YAML row ``[-1, 3, C2f, [128,
True]]`` after a line of 64 channels is the line ``((128, 4), C2f(3, True))`` (its ``c1`` is the line
it reads, its ``c2`` the line's channels).

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.yolo_blocks import C2f, SPPF, conv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), conv(3)),  # Ultralytics' Conv(3, 16, 3, 2): stride 2, padding 1
...         ((32, 4), conv(3)),
...         ((32, 4), C2f(1, True)),  # [-1, 1, C2f, [32, True]]
...         ((32, 4), SPPF(5)),  # [-1, 1, SPPF, [32, 5]]
...     ]
... )
>>> net(torch.randn(1, 3, 45, 61)).shape  # every size: 45 -> 23 -> 12
torch.Size([1, 32, 12, 16])
>>> net[3].line_tags()
{'cv1': 1, 'm.0': 3, 'cv2': 5}
>>> net[3]["m.0"].line_tags()
{'cv1': 1, 'cv2': 2}

The sub-lines are tagged with Ultralytics' names (``cv1``, ``m.0``, ``attn.qkv`` ...), which a weight
mapping reads. Each block's sub-lines run in Ultralytics' order; its ``state_dict`` registers some
modules before ones that run first (``C2f``'s and ``C2PSA``'s ``cv2`` before ``m``, ``C3k``'s ``cv2``
and ``cv3`` before ``m``, ``Attention``'s ``proj`` before ``pe``), which is where :func:`~neurlink.interop.load_by_structure` needs
``order=`` (``tests/test_yolo_blocks.py`` shows each). Where the blocks read YAML settings: a row's
``n`` is its block's ``n`` after Ultralytics' depth scaling, its channels the line's after the width
scaling (``parse_model``); YOLO11's ``C3k2`` rows are ``[c2, c3k, e]``, and its m, l and x models
set ``c3k=True`` on every one; YOLOv8's and YOLO11's ``SPPF`` rows ``[c2, k]`` activate ``cv1``
(``SPPF``'s default here), YOLO26's ``[c2, k, n, shortcut]`` do not (``cv1_act=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

from .. import nerves as nv
from .._names import nameable
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..lines import PREVIOUS, NerveDef
from ..nerves._args import Act, Norm, keeps_dims, positive_int
from ..shapes import Dims
from ._common import positive_number

__all__ = [
    "AttentionHeads",
    "Bottleneck",
    "C2PSA",
    "C2f",
    "C3k",
    "C3k2",
    "ConvLine",
    "PSAAttention",
    "PSABlock",
    "SPPF",
    "conv",
    "yolo_norm",
]


@nameable
def yolo_norm(channels: int) -> nn.BatchNorm2d:
    """The norm of Ultralytics' ``Conv``: ``nn.BatchNorm2d`` of eps 0.001 and momentum 0.03 (what its
    ``initialize_weights`` sets on every BatchNorm of a model), a named function so that lines print it short."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.03)


class ConvLine:
    """Ultralytics' ``Conv`` as a line: ``conv(k, **keywords)`` is ``nv.Conv2d_BN_ReLU(k, norm=yolo_norm,
    act=nn.SiLU, **keywords)``, and ``conv[selector, tag](k)`` the same with a selector and a tag, as a
    nerve class takes them. Keywords override (``act=None`` is Ultralytics' ``act=False``).

    The grammar's "same" padding of an odd kernel is Ultralytics' ``k // 2`` at every stride and size
    (a 3x3 stride-2 conv makes ``ceil(n / 2)``, as PyTorch's padding 1 does).

    >>> from neurlink.models.yolo_blocks import conv
    >>> conv(3)
    Conv2d_BN_ReLU(3, norm=yolo_norm, act=SiLU)
    >>> conv[0, "qkv"](1, act=None)
    Conv2d_BN_ReLU[0, 'qkv'](1, norm=yolo_norm, act=None)
    """

    __slots__ = ("_key",)

    def __init__(self, key: Any = PREVIOUS) -> None:
        self._key = key

    def __getitem__(self, key: Any) -> ConvLine:
        return ConvLine(key)

    def __call__(self, kernel_size: int | Sequence[int], **keywords: Any) -> NerveDef:
        keywords = {"norm": yolo_norm, "act": nn.SiLU, **keywords}
        return nv.Conv2d_BN_ReLU[self._key](kernel_size, **keywords)  # [PREVIOUS]: the plain Conv2d_BN_ReLU(...)

    def __repr__(self) -> str:
        return "conv" if self._key is PREVIOUS else f"conv[{self._key!r}]"


conv = ConvLine()


# --- what the blocks check -------------------------------------------------------------------


def _same_shape(nerve: nv.Nerve) -> tuple[Dims, Dims]:
    """One input line, whose spatial shape the block keeps (every conv of these blocks has stride 1)."""
    nerve.expect_links(1)
    link, declared = nerve.input_links[0], nerve.target_dims[0]
    if not declared.shape.same_as(link.dims[0].shape, 2):
        raise DimsError(
            f"{type(nerve).__name__} keeps the shape {link.dims[0].shape!r} of its input line {link.index}, but the"
            f" line declares {declared.shape!r}",
            allowed=f"({declared.channels}, {link.dims[0].shape!r}) on this line (a strided conv line before it"
            " changes the shape)",
        )
    return link.dims[0], declared


def _flag(name: str, value: Any, owner: str, hint: str = "") -> bool:
    if not isinstance(value, bool):
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a bool{hint}", allowed=f"{name}=True or False")
    return value


def _hidden(nerve: nv.Nerve, channels: int, expansion: Any, of: str) -> int:
    """Ultralytics' hidden channels, ``int(channels * expansion)``, at least one."""
    name = type(nerve).__name__
    positive_number("expansion", expansion, name)
    hidden = int(channels * expansion)
    if hidden < 1:
        raise NerveArgumentError(
            f"{name}: expansion={expansion!r} of the {of} {channels} channels gives int({channels} * {expansion})"
            " = 0 hidden channels",
            allowed=f"expansion >= 1 / {channels}",
        )
    return hidden


def _odd_kernel(name: str, value: Any, owner: str) -> int | tuple[int, int]:
    """A kernel Ultralytics pads by ``k // 2``: that keeps the size (as the grammar's "same" does) only
    where ``k`` is odd, which its blocks need."""
    sizes = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(sizes, (tuple, list))
        or len(sizes) not in (1, 2)
        or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 for k in sizes)
    ):
        raise NerveArgumentError(
            f"{owner}: {name}={value!r} is not an odd kernel size: Ultralytics pads a kernel k by k // 2, which"
            " keeps the map's size only where k is odd",
            allowed=f"{name} as an odd int (1, 3, 5, ...) or a pair of them",
        )
    return value if isinstance(value, int) else (sizes[0], sizes[-1])


def _keywords(norm: Norm, act: Act) -> dict[str, Any]:
    return {"norm": norm, "act": act}


# --- CSP blocks ------------------------------------------------------------------------------


class Bottleneck(nv.Nerve):
    """Ultralytics' ``Bottleneck``, at its input's shape: a conv of ``kernels[0]`` to ``int(c2 *
    expansion)`` channels (``cv1``), a conv of ``kernels[1]`` and ``groups`` to the line's ``c2``
    (``cv2``), and with ``shortcut`` the input added, where the line keeps its channels (Ultralytics
    drops the shortcut where they differ; so does this block).

    ``kernels`` are two odd kernel sizes, each an int or a pair (Ultralytics' ``k``); ``norm`` and
    ``act`` go to both convs (Ultralytics: :func:`yolo_norm`, SiLU).

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import Bottleneck
    >>> net = nv.build([((3, 1), nv.Input()), ((32, 1), nv.Conv2d(1)), ((32, 1), Bottleneck())])
    >>> net(torch.randn(1, 3, 13, 17)).shape
    torch.Size([1, 32, 13, 17])
    >>> net[2]["cv1"].conv.out_channels, type(net[2][-1]).__name__  # expansion 0.5, the shortcut
    (16, 'Add')
    """

    spatial_rank = 2

    def __init__(
        self,
        shortcut: bool = True,
        groups: int = 1,
        kernels: Sequence[int | Sequence[int]] = (3, 3),
        expansion: float = 0.5,
        *,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        dims_in, dims_out = _same_shape(self)
        _flag("shortcut", shortcut, name)
        positive_int("groups", groups, name)
        if not isinstance(kernels, (tuple, list)) or len(kernels) != 2:
            raise NerveArgumentError(
                f"{name}: kernels={kernels!r} is not two kernel sizes",
                allowed="kernels=(k1, k2), one for cv1 and one for cv2, each an odd int or a pair of them",
            )
        first, second = (_odd_kernel(f"kernels[{k}]", kernels[k], name) for k in (0, 1))
        hidden = _hidden(self, dims_out.channels, expansion, "output")
        if hidden % groups or dims_out.channels % groups:
            raise NerveArgumentError(
                f"{name}: groups={groups} does not divide the {hidden} hidden and {dims_out.channels} output"
                " channels of cv2",
                allowed=f"groups dividing {hidden} and {dims_out.channels}",
            )
        keywords = _keywords(norm, act)
        lines: list[Any] = [  # line 0 is the block's input
            ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU[0, "cv1"](first, **keywords)),
            (dims_out, nv.Conv2d_BN_ReLU[-1, "cv2"](second, groups=groups, **keywords)),
        ]
        if shortcut and dims_in.channels == dims_out.channels:
            lines.append((dims_out, nv.Add[[0, -1]]()))  # x + cv2(cv1(x)), Ultralytics' order
        self.add(lines)


def _split_lines(
    dims_out: Dims, hidden: int, n: int, block: Callable[[Any, str], NerveDef], keywords: dict[str, Any]
) -> list[Any]:
    """C2f's lines (C3k2's too): ``cv1`` to twice ``hidden``, its two halves, ``n`` blocks each reading the
    one before (the first, the second half), every piece concatenated, and ``cv2`` to the line's channels.
    ``block(selector, tag)`` makes a block's definition."""
    shape = dims_out.shape
    lines: list[Any] = [
        ((2 * hidden, shape), nv.Conv2d_BN_ReLU[0, "cv1"](1, **keywords)),
        ((hidden, shape), (hidden, shape), nv.ChannelSplit()),  # Ultralytics' chunk(2, 1): two views
    ]
    lines += [((hidden, shape), block(nv.output(2, 1) if k == 0 else -1, f"m.{k}")) for k in range(n)]
    pieces = [nv.output(2, 0), nv.output(2, 1), *range(3, 3 + n)]
    lines += [
        (((2 + n) * hidden, shape), nv.Concat[pieces]()),
        (dims_out, nv.Conv2d_BN_ReLU[-1, "cv2"](1, **keywords)),
    ]
    return lines


class C2f(nv.Nerve):
    """Ultralytics' ``C2f`` (YOLOv8's block), at its input's shape: a 1x1 conv to twice ``c = int(c2 *
    expansion)`` channels (``cv1``), split in two halves; ``n`` :class:`Bottleneck` blocks of ``c``
    channels (expansion 1, 3x3 kernels, ``shortcut`` and ``groups``; ``m.0`` ...), the first reading
    the second half and each the one before; the two halves and every block's output concatenated, ``(2 +
    n) * c`` channels, and a 1x1 conv to the line's ``c2`` (``cv2``). ``norm`` and ``act`` go to every
    conv.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import C2f
    >>> net = nv.build([((3, 1), nv.Input()), ((64, 1), C2f(2, True))])  # [-1, 2, C2f, [64, True]]
    >>> net(torch.randn(1, 3, 13, 17)).shape
    torch.Size([1, 64, 13, 17])
    >>> net[1].line_tags()
    {'cv1': 1, 'm.0': 3, 'm.1': 4, 'cv2': 6}
    >>> net[1]["cv2"].conv.in_channels  # (2 + 2) * 32
    128
    """

    spatial_rank = 2
    depth_arguments = ("n",)  # a definition file's scale multiplies n by its depth

    def __init__(
        self,
        n: int = 1,
        shortcut: bool = False,
        groups: int = 1,
        expansion: float = 0.5,
        *,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _, dims_out = _same_shape(self)
        positive_int("n", n, name)
        _flag("shortcut", shortcut, name)
        positive_int("groups", groups, name)
        hidden = _hidden(self, dims_out.channels, expansion, "output")

        def bottleneck(selector: Any, tag: str) -> NerveDef:
            return Bottleneck[selector, tag](shortcut, groups, (3, 3), 1.0, norm=norm, act=act)

        self.add(_split_lines(dims_out, hidden, n, bottleneck, _keywords(norm, act)))


class C3k(nv.Nerve):
    """Ultralytics' ``C3k`` (a ``C3`` of ``kernel_size`` kernels; YOLO11's inner block), at its input's
    shape: a 1x1 conv to ``c = int(c2 * expansion)`` channels (``cv1``), then ``n`` :class:`Bottleneck`
    blocks of ``c`` channels (expansion 1, ``kernel_size`` kernels, ``shortcut`` and ``groups``; ``m.0``
    ...); beside them a 1x1 conv of the input to ``c`` (``cv2``); the two concatenated and a 1x1 conv to
    the line's ``c2`` (``cv3``). ``norm`` and ``act`` go to every conv.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import C3k
    >>> net = nv.build([((3, 1), nv.Input()), ((32, 1), C3k(2))])
    >>> net(torch.randn(1, 3, 13, 17)).shape
    torch.Size([1, 32, 13, 17])
    >>> net[1].line_tags()
    {'cv1': 1, 'm.0': 2, 'm.1': 3, 'cv2': 4, 'cv3': 6}
    """

    spatial_rank = 2

    def __init__(
        self,
        n: int = 1,
        shortcut: bool = True,
        groups: int = 1,
        expansion: float = 0.5,
        kernel_size: int = 3,
        *,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        dims_in, dims_out = _same_shape(self)
        positive_int("n", n, name)
        _flag("shortcut", shortcut, name)
        positive_int("groups", groups, name)
        kernel = _odd_kernel("kernel_size", kernel_size, name)
        hidden = _hidden(self, dims_out.channels, expansion, "output")
        keywords, shape = _keywords(norm, act), dims_in.shape
        lines: list[Any] = [((hidden, shape), nv.Conv2d_BN_ReLU[0, "cv1"](1, **keywords))]
        lines += [
            ((hidden, shape), Bottleneck[-1, f"m.{k}"](shortcut, groups, (kernel, kernel), 1.0, **keywords))
            for k in range(n)
        ]
        lines += [  # Ultralytics' cv3(cat(m(cv1(x)), cv2(x))): cv2 runs after the blocks
            ((hidden, shape), nv.Conv2d_BN_ReLU[0, "cv2"](1, **keywords)),
            ((2 * hidden, shape), nv.Concat[[-2, -1]]()),
            (dims_out, nv.Conv2d_BN_ReLU[-1, "cv3"](1, **keywords)),
        ]
        self.add(lines)


class C3k2(nv.Nerve):
    """Ultralytics' ``C3k2`` (YOLO11's block), at its input's shape: :class:`C2f`'s lines with ``n``
    other blocks of ``c = int(c2 * expansion)`` channels, ``m.0`` ...: with ``c3k``, each a :class:`C3k`
    of two Bottlenecks (its expansion 0.5, 3x3 kernels); without, each a :class:`Bottleneck` of 3x3
    kernels and expansion 0.5 (C2f's have 1). ``shortcut`` and ``groups`` go to every Bottleneck,
    ``norm`` and ``act`` to every conv.

    The arguments come in the order of YOLO11's YAML rows: ``[256, False, 0.25]`` is ``C3k2(n, False,
    0.25)``. Ultralytics' ``parse_model`` sets ``c3k=True`` on every row of the m, l and x models.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import C3k2
    >>> net = nv.build([((3, 1), nv.Input()), ((64, 1), C3k2(1, False, 0.25))])  # [-1, 1, C3k2, [64, False, 0.25]]
    >>> net(torch.randn(1, 3, 13, 17)).shape
    torch.Size([1, 64, 13, 17])
    >>> type(net[1]["m.0"]).__name__, net[1]["m.0"]["cv1"].conv.out_channels  # 16 channels, halved
    ('Bottleneck', 8)
    >>> type(nv.build([((3, 1), nv.Input()), ((64, 1), C3k2(1, True))])[1]["m.0"]).__name__
    'C3k'
    """

    spatial_rank = 2
    depth_arguments = ("n",)  # a definition file's scale multiplies n by its depth

    def __init__(
        self,
        n: int = 1,
        c3k: bool = False,
        expansion: float = 0.5,
        groups: int = 1,
        shortcut: bool = True,
        *,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _, dims_out = _same_shape(self)
        positive_int("n", n, name)
        _flag("c3k", c3k, name, " (C3k2's arguments are n, c3k, expansion, as YOLO11's rows [c2, c3k, e])")
        _flag("shortcut", shortcut, name)
        positive_int("groups", groups, name)
        hidden = _hidden(self, dims_out.channels, expansion, "output")

        def inner(selector: Any, tag: str) -> NerveDef:
            if c3k:
                return C3k[selector, tag](2, shortcut, groups, norm=norm, act=act)
            return Bottleneck[selector, tag](shortcut, groups, norm=norm, act=act)

        self.add(_split_lines(dims_out, hidden, n, inner, _keywords(norm, act)))


class SPPF(nv.Nerve):
    """Ultralytics' ``SPPF`` (spatial pyramid pooling, fast), at its input's shape: a 1x1 conv to half the
    input's channels (``cv1``), ``repeats`` max pools of ``kernel_size`` (stride 1, padded ``k // 2``),
    each pooling the one before, the conv's output and every pool's concatenated, and a 1x1 conv to the
    line's channels (``cv2``); with ``shortcut``, the input added where the line keeps its channels.

    ``cv1_act``: whether ``cv1`` has the activation. YOLOv8's and YOLO11's rows ``[c2, k]`` have it (the
    default; Ultralytics' ``parse_model`` sets it on those rows), YOLO26's ``[c2, k, n, shortcut]`` do not
    (``cv1_act=False``, what Ultralytics' ``SPPF`` class itself makes). ``norm`` and ``act`` go to the convs.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import SPPF
    >>> net = nv.build([((3, 1), nv.Input()), ((64, 1), nv.Conv2d(1)), ((64, 1), SPPF(5))])
    >>> net(torch.randn(1, 3, 13, 17)).shape
    torch.Size([1, 64, 13, 17])
    >>> net[2]["cv2"].conv.in_channels  # 32 channels, pooled three times: 4 * 32
    128
    """

    spatial_rank = 2

    def __init__(
        self,
        kernel_size: int = 5,
        repeats: int = 3,
        shortcut: bool = False,
        *,
        cv1_act: bool = True,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        dims_in, dims_out = _same_shape(self)
        kernel = _odd_kernel("kernel_size", kernel_size, name)
        positive_int("repeats", repeats, name)
        _flag("shortcut", shortcut, name)
        _flag("cv1_act", cv1_act, name)
        hidden = dims_in.channels // 2
        if hidden < 1:
            raise DimsError(
                f"{name} halves its input's channels, but line {self.input_links[0].index} has 1",
                allowed="an input line of 2 channels or more",
            )
        shape = dims_in.shape
        lines: list[Any] = [
            ((hidden, shape), nv.Conv2d_BN_ReLU[0, "cv1"](1, norm=norm, act=act if cv1_act else None)),
            *[((hidden, shape), nv.MaxPool2d(kernel)) for _ in range(repeats)],  # Ultralytics' one m, again
            ((hidden * (repeats + 1), shape), nv.Concat[list(range(1, repeats + 2))]()),
            (dims_out, nv.Conv2d_BN_ReLU[-1, "cv2"](1, **_keywords(norm, act))),
        ]
        if shortcut and dims_in.channels == dims_out.channels:
            lines.append((dims_out, nv.Add[[-1, 0]]()))  # y + x, Ultralytics' order
        self.add(lines)


# --- attention (YOLO11's C2PSA) --------------------------------------------------------------


@fx.wrap
def attend(
    qkv: torch.Tensor, heads: int, key_dim: int, head_dim: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ultralytics' ``Attention`` between its ``qkv`` conv and its ``pe`` conv: per head, the queries, keys
    and values are consecutive channels of ``qkv`` (``key_dim``, ``key_dim``, ``head_dim``); every position
    attends to every position. Returns the attended values and the values, each ``(N, heads * head_dim, H,
    W)``, in Ultralytics' operations (so its values, to rounding)."""
    batch, _, height, width = qkv.shape
    q, k, v = qkv.view(batch, heads, 2 * key_dim + head_dim, height * width).split([key_dim, key_dim, head_dim], 2)
    weights = ((q * scale).transpose(-2, -1) @ k).softmax(dim=-1)
    channels = heads * head_dim
    attended = (v @ weights.transpose(-2, -1)).view(batch, channels, height, width)
    return attended, v.reshape(batch, channels, height, width)


class AttentionHeads(nv.Nerve):
    """The multi-head attention inside Ultralytics' ``Attention``, on a ``qkv`` line: ``heads`` heads of
    ``key_dim`` query and key channels each, the values taking the rest. The line declares two outputs of
    the same dims, ``C = heads * head_dim`` channels at the input's shape: the attended values (scaled by
    ``key_dim ** -0.5``, softmax over the keys) and the values themselves, which :class:`PSAAttention`'s
    ``pe`` conv reads. The ``qkv`` line has ``C + 2 * heads * key_dim`` channels.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import AttentionHeads
    >>> net = nv.build([((3, 1), nv.Input()), ((128, 1), nv.Conv2d(1)), ((64, 1), (64, 1), AttentionHeads(1, 32))])
    >>> [tuple(y.shape) for y in net(torch.randn(1, 3, 5, 7))]  # 64 + 2 * 32 = 128 channels read
    [(1, 64, 5, 7), (1, 64, 5, 7)]
    """

    spatial_rank = 2

    def __init__(self, heads: int, key_dim: int) -> None:
        super().__init__()
        name = type(self).__name__
        positive_int("heads", heads, name)
        positive_int("key_dim", key_dim, name)
        self.expect_links(1, outputs=2)
        link, outputs = self.input_links[0], self.target_dims
        if len(outputs) != 2 or not outputs[0].same_as(outputs[1]):
            raise DimsError(
                f"{name} gives the attended values and the values, two outputs of the same dims, but the line"
                f" declares {', '.join(map(repr, outputs))}",
                allowed="((C, shape), (C, shape), AttentionHeads(heads, key_dim)), twice the same dims",
            )
        channels = outputs[0].channels
        if channels % heads:
            raise DimsError(
                f"{name}: the line's {channels} channels do not divide into {heads} heads",
                allowed=f"heads dividing {channels}",
            )
        if link.channels != channels + 2 * heads * key_dim:
            raise DimsError(
                f"{name} of {heads} heads with key_dim {key_dim} and {channels} value channels reads"
                f" {channels} + 2 * {heads} * {key_dim} = {channels + 2 * heads * key_dim} channels, but line"
                f" {link.index} has {link.channels}",
                allowed=f"a qkv line of {channels + 2 * heads * key_dim} channels",
            )
        if not outputs[0].shape.same_as(link.shape, 2):
            raise DimsError(
                f"{name} keeps the shape {link.shape!r} of its input line {link.index}, but the line declares"
                f" {outputs[0].shape!r}",
                allowed=f"({channels}, {link.shape!r}) for both outputs",
            )
        self.heads, self.key_dim, self.head_dim = heads, key_dim, channels // heads
        self.scale = key_dim**-0.5

    def _steps(self, ops: Ops, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ops.function(attend, qkv, self.heads, self.key_dim, self.head_dim, self.scale)


def _heads(nerve: nv.Nerve, heads: Any, channels: int) -> int:
    """``heads``, or YOLO11's rule where it is None: a head per 64 channels, at least one."""
    if heads is None:
        return max(channels // 64, 1)
    return positive_int("heads", heads, type(nerve).__name__)


class PSAAttention(nv.Nerve):
    """Ultralytics' ``Attention`` (of YOLO11's ``PSABlock``), keeping its input's dims ``C``: a 1x1 conv
    with its norm and no activation (``qkv``) to ``C + 2 * heads * key_dim`` channels, where ``key_dim =
    int(C / heads * attn_ratio)``; :class:`AttentionHeads`; the values through a depthwise 3x3 conv with
    its norm (``pe``, the positional encoding) added to the attended values; a 1x1 conv with its norm
    (``proj``).

    ``heads`` defaults to YOLO11's rule, ``max(C // 64, 1)`` (Ultralytics' ``Attention`` class itself
    defaults to 8). ``norm`` goes to the three convs, which have no activation.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import PSAAttention
    >>> net = nv.build([((3, 1), nv.Input()), ((128, 1), nv.Conv2d(1)), ((128, 1), PSAAttention())])
    >>> net(torch.randn(1, 3, 5, 7)).shape
    torch.Size([1, 128, 5, 7])
    >>> net[2].line_tags(), net[2]["qkv"].conv.out_channels  # 2 heads of 32 key channels: 128 + 2 * 2 * 32
    ({'qkv': 1, 'pe': 3, 'proj': 5}, 256)
    """

    spatial_rank = 2

    def __init__(self, heads: int | None = None, attn_ratio: float = 0.5, *, norm: Norm = yolo_norm) -> None:
        super().__init__()
        name = type(self).__name__
        self.expect_links(1)
        keeps_dims(self)
        dims = self.target_dims[0]
        channels = dims.channels
        heads = _heads(self, heads, channels)
        positive_number("attn_ratio", attn_ratio, name)
        if channels % heads:
            raise NerveArgumentError(
                f"{name}: the line's {channels} channels do not divide into {heads} heads",
                allowed=f"heads dividing {channels}",
            )
        key_dim = int(channels // heads * attn_ratio)
        if key_dim < 1:
            raise NerveArgumentError(
                f"{name}: attn_ratio={attn_ratio!r} of a head's {channels // heads} channels gives"
                f" int({channels // heads} * {attn_ratio}) = 0 key channels",
                allowed=f"attn_ratio >= {heads} / {channels}",
            )
        shape = dims.shape
        self.add(
            [  # line 0 is the input
                ((channels + 2 * heads * key_dim, shape), nv.Conv2d_BN_ReLU[0, "qkv"](1, norm=norm, act=None)),
                ((channels, shape), (channels, shape), AttentionHeads(heads, key_dim)),
                ((channels, shape), nv.Conv2d_BN_ReLU[nv.output(2, 1), "pe"](3, groups=channels, norm=norm, act=None)),
                (dims, nv.Add[[nv.output(2, 0), 3]]()),
                (dims, nv.Conv2d_BN_ReLU[-1, "proj"](1, norm=norm, act=None)),
            ]
        )


class PSABlock(nv.Nerve):
    """Ultralytics' ``PSABlock``, keeping its input's dims ``C``: :class:`PSAAttention` (``attn``) and a
    feed-forward of two 1x1 convs (``ffn.0`` to ``2 * C`` with the activation, ``ffn.1`` back to ``C``
    without), each added to its input with ``shortcut``.

    ``heads`` defaults to YOLO11's rule, ``max(C // 64, 1)`` (Ultralytics' ``PSABlock`` class itself
    defaults to 4); ``norm`` goes to every conv, ``act`` to ``ffn.0``.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import PSABlock
    >>> net = nv.build([((3, 1), nv.Input()), ((64, 1), nv.Conv2d(1)), ((64, 1), PSABlock())])
    >>> net(torch.randn(1, 3, 5, 7)).shape
    torch.Size([1, 64, 5, 7])
    >>> net[2].line_tags()
    {'attn': 1, 'ffn.0': 3, 'ffn.1': 4}
    """

    spatial_rank = 2

    def __init__(
        self,
        attn_ratio: float = 0.5,
        heads: int | None = None,
        shortcut: bool = True,
        *,
        norm: Norm = yolo_norm,
        act: Act = nn.SiLU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        keeps_dims(self)
        _flag("shortcut", shortcut, type(self).__name__)
        dims = self.target_dims[0]
        hidden = (2 * dims.channels, dims.shape)
        attn = PSAAttention[0, "attn"](heads, attn_ratio, norm=norm)
        ffn = [
            (hidden, nv.Conv2d_BN_ReLU[-1, "ffn.0"](1, norm=norm, act=act)),
            (dims, nv.Conv2d_BN_ReLU[-1, "ffn.1"](1, norm=norm, act=None)),
        ]
        if shortcut:  # x + attn(x), then x + ffn(x)
            self.add([(dims, attn), (dims, nv.Add[[0, 1]]()), *ffn, (dims, nv.Add[[2, 4]]())])
        else:
            self.add([(dims, attn), *ffn])


class C2PSA(nv.Nerve):
    """Ultralytics' ``C2PSA`` (YOLO11's attention block), keeping its input's dims ``C``: a 1x1 conv to
    twice ``c = int(C * expansion)`` channels (``cv1``), split in two halves; the second through ``n``
    :class:`PSABlock` blocks of ``c`` channels (``m.0`` ..., attention ratio 0.5, ``max(c // 64, 1)``
    heads); the first half and the blocks' output concatenated, and a 1x1 conv back to ``C`` (``cv2``).
    ``norm`` and ``act`` go to every conv (the attention's have no activation).

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo_blocks import C2PSA
    >>> net = nv.build([((3, 1), nv.Input()), ((256, 1), nv.Conv2d(1)), ((256, 1), C2PSA(1))])  # [-1, 1, C2PSA, [256]]
    >>> net(torch.randn(1, 3, 5, 7)).shape
    torch.Size([1, 256, 5, 7])
    >>> net[2].line_tags(), net[2]["m.0"]["attn"]["qkv"].conv.out_channels  # 2 heads of 32 key channels
    ({'cv1': 1, 'm.0': 3, 'cv2': 5}, 256)
    """

    spatial_rank = 2
    depth_arguments = ("n",)  # a definition file's scale multiplies n by its depth

    def __init__(self, n: int = 1, expansion: float = 0.5, *, norm: Norm = yolo_norm, act: Act = nn.SiLU) -> None:
        super().__init__()
        name = type(self).__name__
        self.expect_links(1)
        keeps_dims(self)  # Ultralytics asserts c1 == c2
        positive_int("n", n, name)
        dims = self.target_dims[0]
        hidden = _hidden(self, dims.channels, expansion, "input")
        keywords, shape = _keywords(norm, act), dims.shape
        heads = max(hidden // 64, 1)
        lines: list[Any] = [
            ((2 * hidden, shape), nv.Conv2d_BN_ReLU[0, "cv1"](1, **keywords)),
            ((hidden, shape), (hidden, shape), nv.ChannelSplit()),
        ]
        lines += [
            ((hidden, shape), PSABlock[nv.output(2, 1) if k == 0 else -1, f"m.{k}"](0.5, heads, **keywords))
            for k in range(n)
        ]
        lines += [
            ((2 * hidden, shape), nv.Concat[[nv.output(2, 0), -1]]()),
            (dims, nv.Conv2d_BN_ReLU[-1, "cv2"](1, **keywords)),
        ]
        self.add(lines)
