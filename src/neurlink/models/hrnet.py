"""HRNet in the grammar, layer for layer the ImageNet classifiers of timm (``hrnet_w18`` ...).

HRNet carries parallel branches at ratios 4, 8, 16 and 32 through the whole network and fuses
them across resolutions at every module. Each transition and each HR module is *one line* that
declares all its branches; the fuse layers are derived from those dims: a branch going up is a
1x1 conv + norm resized to the target branch's declared ratio, a branch going down a chain of
3x3 stride-2 convs + norms, as many as the ratio gap asks for.

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.hrnet import HRModule, HRTransition
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 4), nv.Conv2d_BN_ReLU(3)),
...         ((8, 4), (16, 8), HRTransition()),  # a new branch at ratio 8, by a stride-2 conv
...         ((8, 4), (16, 8), HRModule(blocks=1)),  # each branch: a BasicBlock; then the fuse
...         ((8, 4), (16, 8), (32, 16), HRTransition()),
...         ((8, 4), (16, 8), (32, 16), HRModule[-1, "branches"](blocks=1)),
...     ]
... )
>>> [tuple(y.shape) for y in net(torch.randn(1, 3, 50, 37))]  # ceil(50 / 4) = 13, ceil(37 / 16) = 3
[(1, 8, 13, 10), (1, 16, 7, 5), (1, 32, 4, 3)]

The builders (``hrnet_w18_small`` ... ``hrnet_w64``) tag the stem and the last HR module,
``stage4``: ``net(x, outputs=["stage4"])`` gives the four branches, a feature pyramid, at any
input size (timm's HRNet needs sizes that are multiples of 32).
"""

from __future__ import annotations

import inspect
from fractions import Fraction
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError, NerveArgumentError, UnexpectedArgumentError
from ..nerves._args import Act, Norm, make_act, positive_int
from ..shapes import Dims, ShapeSpec
from ._common import check_keywords
from ._published import timm_weights
from .resnet import BasicBlock, Bottleneck, _conv

__all__ = [
    "HRModule",
    "HRTransition",
    "hrnet_w18_small",
    "hrnet_w18_small_v2",
    "hrnet_w18",
    "hrnet_w30",
    "hrnet_w32",
    "hrnet_w40",
    "hrnet_w44",
    "hrnet_w48",
    "hrnet_w64",
]


class _Branches(nv.Nerve):
    """What the transition and the HR module share: reading branches, and ending in one Bundle line.

    Both name their parts by tagging the sub-lines that hold them (``nerve.line_tags()``), with
    timm's names: an HR module's blocks ``branches.{i}.{k}``, its fuse convs from branch ``j`` to
    ``i`` ``fuse_layers.{i}.{j}`` (up: one 1x1 conv) or ``fuse_layers.{i}.{j}.{k}`` (down: stride-2
    convs); a transition's conv of an existing branch ``branch{i}``, of a new one ``branch{i}.{k}``.
    ``block["branches.1.0"]`` is that block; the weight mappings (``neurlink.interop.timm``) read the tags.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def _read_branches(self) -> tuple[list[Dims], list[Dims]]:
        name = type(self).__name__
        if len(self.input_links) != 1:
            raise DimsError(
                f"{name} takes one line (whose outputs are the branches), but the selector gives {len(self.input_links)}",
                allowed="a selector choosing one line, e.g. the previous one",
            )
        inputs, outputs = list(self.input_links[0].dims), list(self.target_dims)
        for dims in inputs + outputs:
            if dims.shape.is_absolute:
                raise DimsError(
                    f"{name} branches are at ratios of the input, but {dims!r} has an absolute shape",
                    allowed="(channels, ratio) dims, e.g. ((18, 4), (36, 8), ...)",
                )
        self._lines: list = []
        self._first = len(self.input_links)  # sub-lines 0.. are the inputs
        return inputs, outputs

    def _branch(self, k: int) -> Any:
        """The selector of input branch ``k`` inside the sub-lines."""
        return nv.output(0, k) if len(self.input_links[0].dims) > 1 else 0

    def _line(self, line: Any) -> int:
        self._lines.append(line)
        return self._first + len(self._lines) - 1

    def _downsample(
        self, source: Any, dims_from: Dims, dims_to: Dims, norm: Norm, act: Act, last_act: Act, tag: str
    ) -> list[int]:
        """Stride-2 3x3 convs (conv -> norm -> act) from ``dims_from`` until ``dims_to``'s ratio,
        tagged ``{tag}.0``, ``{tag}.1``, ...

        The chain keeps ``dims_from``'s channels until its last conv, which makes ``dims_to``'s,
        and has ``last_act`` as its activation (HRNet's fuse ends it without one).
        """
        steps = _doublings(dims_from.shape, dims_to.shape, type(self).__name__)
        indices = []
        for k in range(1, steps + 1):
            last = k == steps
            dims = (dims_to.channels if last else dims_from.channels, _scaled(dims_from.shape, 2**k))
            selector = (source if k == 1 else -1, f"{tag}.{k - 1}")
            conv = nv.Conv2d_BN_ReLU[selector](3, **_conv(norm, last_act if last else act))
            indices.append(self._line((dims, conv)))
        return indices

    def _bundle(self, outputs: list[Dims], ends: list) -> None:
        """The last sub-line: each output branch's value, as the nerve's outputs."""
        if len(outputs) == 1:
            self._line((outputs[0], nv.Identity[ends[0]]()))
        else:
            self._line((*outputs, nv.Bundle[list(ends)]()))
        self.add(self._lines)
        del self._lines, self._first


class HRTransition(_Branches):
    """From the branches of one line to those of the next: ``((18, 4), (36, 8), HRTransition())``.

    A branch that keeps its dims passes through; one that changes channels at the same ratio is a
    3x3 conv -> norm -> act; each new branch is a chain of 3x3 stride-2 convs (conv -> norm -> act)
    from the last input branch, keeping its channels until the last conv (timm's ``transition``).
    The input may be a single-output line (the end of HRNet's stage 1).
    """

    def __init__(self, norm: Norm = nn.BatchNorm2d, act: Act = nn.ReLU) -> None:
        super().__init__()
        inputs, outputs = self._read_branches()
        name = type(self).__name__
        make_act(act, name)  # check it once, here
        if len(outputs) < len(inputs):
            raise DimsError(
                f"{name} goes from {len(inputs)} branches to {len(outputs)}; a transition keeps or adds branches",
                allowed=f"{len(inputs)} or more dims on this line",
            )
        ends = []
        for i, dims_out in enumerate(outputs):
            if i < len(inputs) and inputs[i].same_as(dims_out):
                ends.append(self._branch(i))
                continue
            if i < len(inputs):
                if not inputs[i].shape.same_as(dims_out.shape):
                    raise DimsError(
                        f"{name} branch {i} goes from {inputs[i]!r} to {dims_out!r}; an existing branch keeps its ratio",
                        allowed=f"ratio {inputs[i].shape!r} for branch {i}",
                    )
                conv = nv.Conv2d_BN_ReLU[self._branch(i), f"branch{i}"](3, **_conv(norm, act))
                ends.append(self._line((dims_out, conv)))
            else:
                last = len(inputs) - 1
                chain = self._downsample(self._branch(last), inputs[last], dims_out, norm, act, act, f"branch{i}")
                ends.append(chain[-1])
        self._bundle(outputs, ends)


class HRModule(_Branches):
    """One HR module: blocks on every branch, then every branch fused into every other.

    ``((18, 4), (36, 8), (72, 16), HRModule(blocks=4))`` after a line with those three branches
    is timm's ``HighResolutionModule`` with four ``BasicBlock``\\ s per branch (``blocks`` may be a
    tuple, one count per branch; ``block`` any block nerve, ``block_keywords`` go to each). Output
    branch ``i`` is ``act(sum over j)`` of input branch ``j`` brought to branch ``i``'s dims: itself for
    ``j == i``; a 1x1 conv -> norm, resized (``mode``, nearest by default) to the size of branch ``i``
    (its declared ratio, so the module needs no base shape), for a lower-resolution branch; 3x3 stride-2 convs for a higher-resolution one, with
    ``act`` between them. A branch's blocks may change its channels (the first one projects its skip).
    """

    def __init__(
        self,
        blocks: int | tuple[int, ...] = 4,
        block: type[nv.Nerve] = BasicBlock,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
        mode: str = "nearest",
        **block_keywords: Any,
    ) -> None:
        super().__init__()
        inputs, outputs = self._read_branches()
        name = type(self).__name__
        if len(inputs) != len(outputs):
            raise DimsError(
                f"{name} reads {len(inputs)} branch(es), but the line declares {len(outputs)}",
                allowed=f"{len(inputs)} dims (add branches with an HRTransition line)",
            )
        # the module's norm and act also make its blocks' (a block of another kind takes its own keywords)
        keywords = {**_conv(norm, act), **block_keywords} if block in (BasicBlock, Bottleneck) else block_keywords
        _check_block_keywords(block, keywords, block_keywords, name)
        counts = (blocks,) * len(inputs) if isinstance(blocks, int) and not isinstance(blocks, bool) else blocks
        counts = tuple(counts) if isinstance(counts, list) else counts
        if not isinstance(counts, tuple) or len(counts) != len(inputs):
            raise NerveArgumentError(
                f"{name}: blocks={blocks!r} for {len(inputs)} branches",
                allowed=f"an int, or a tuple of {len(inputs)} ints (blocks per branch)",
            )
        for count in counts:
            positive_int("blocks", count, name)
        for i, (dims_in, dims_out) in enumerate(zip(inputs, outputs)):
            if not dims_in.shape.same_as(dims_out.shape):
                raise DimsError(
                    f"{name} branch {i} goes from {dims_in!r} to {dims_out!r}; an HR module keeps every branch's ratio",
                    allowed=f"ratio {dims_in.shape!r} for branch {i} (change ratios with an HRTransition line)",
                )
        branch_ends = []  # the sub-line of each branch's last block
        for i, dims in enumerate(outputs):
            source = self._branch(i)
            for k in range(counts[i]):
                last = self._line((dims, block[source if k == 0 else -1, f"branches.{i}.{k}"](**keywords)))
            branch_ends.append(last)
        if len(outputs) == 1:
            self._bundle(outputs, [branch_ends[0]])
            return
        ends = []
        for i, dims_i in enumerate(outputs):
            terms = []
            for j, dims_j in enumerate(outputs):
                branch_j = branch_ends[j]
                if j == i:
                    terms.append(branch_j)
                elif j > i:  # lower resolution: 1x1 conv + norm at its ratio, then resized up
                    conv = nv.Conv2d_BN_ReLU[branch_j, f"fuse_layers.{i}.{j}"](1, **_conv(norm, None))
                    self._line(((dims_i.channels, dims_j.shape.written), conv))
                    # resized to branch i's own size, ceil(base / ratio): no base shape needed, so the
                    # module can be called on its own (checkpoint wrappers, by hand)
                    terms.append(self._line((dims_i, nv.Interpolate[[-1, branch_ends[i]]](mode))))
                else:  # higher resolution: stride-2 convs down to branch i
                    down = self._downsample(branch_j, dims_j, dims_i, norm, act, None, f"fuse_layers.{i}.{j}")
                    terms.append(down[-1])
            total = self._line((dims_i, nv.Add[terms]()))
            activation = make_act(act, name)  # a module of its own for every branch
            ends.append(total if activation is None else self._line((dims_i, activation)))
        self._bundle(outputs, ends)


def _check_block_keywords(block: object, keywords: dict[str, Any], given: dict[str, Any], name: str) -> None:
    """Name a keyword neither the module nor its block takes here, rather than deep in the first block."""
    if not (isinstance(block, type) and issubclass(block, nv.Nerve)):
        raise NerveArgumentError(
            f"{name}: block={block!r} is not a nerve class", allowed="a block nerve such as BasicBlock or Bottleneck"
        )
    signature = inspect.signature(block.__init__)
    try:
        signature.bind(None, **keywords)
    except TypeError:
        takes = [p for p in signature.parameters if p != "self"]
        unknown = sorted(key for key in given if key not in signature.parameters)
        raise UnexpectedArgumentError(
            f"{name}: neither it nor its block {block.__name__} takes {', '.join(map(repr, unknown)) or 'these keywords'}",
            allowed=f"{name}'s keywords (blocks, block, norm, act, mode) and {block.__name__}'s ({', '.join(takes)})",
        ) from None


def _doublings(source: ShapeSpec, target: ShapeSpec, name: str) -> int:
    """How many stride-2 steps take ratio ``source`` to ``target`` (the same in every dim)."""
    rank = source.rank or target.rank or 1
    gaps = {t / s for s, t in zip(source.ratios_for(rank), target.ratios_for(rank))}
    gap = gaps.pop() if len(gaps) == 1 else None
    steps = gap.numerator.bit_length() - 1 if gap is not None and gap.denominator == 1 else 0
    if gap == 1:
        raise DimsError(
            f"{name}: two branches at ratio {source!r}; each branch is at a coarser ratio than the one before",
            allowed="branch ratios that double from one branch to the next, e.g. (18, 4), (36, 8), (72, 16)",
        )
    if gap is None or steps < 1 or gap != 2**steps:
        raise DimsError(
            f"{name}: no chain of stride-2 convs goes from ratio {source!r} to {target!r}",
            allowed="a target ratio that is the source ratio times 2, 4, 8, ... in every dim",
        )
    return steps


def _scaled(shape: ShapeSpec, factor: int) -> Fraction | int | tuple[Fraction | int, ...]:
    """The ratio ``shape * factor``, written as a line writes it (ints where whole)."""

    def plain(ratio: Fraction) -> Fraction | int:
        return int(ratio) if ratio.denominator == 1 else ratio

    ratios = shape.ratios_for(shape.rank or 1)
    if shape.rank is None:
        return plain(ratios[0] * factor)
    return tuple(plain(r * factor) for r in ratios)


# --- the networks ----------------------------------------------------------------------------

# timm's configurations: per stage, (modules, block, blocks per branch, channels per branch).
# Stage 1 is a chain of ResNet blocks on one branch; stages 2-4 are HR modules.
_CONFIGS: dict[str, tuple] = {
    "hrnet_w18_small": ((1, Bottleneck, 1, 32), (1, BasicBlock, 2, 16), (1, BasicBlock, 2, 16), (1, BasicBlock, 2, 16)),
    "hrnet_w18_small_v2": (
        (1, Bottleneck, 2, 64),
        (1, BasicBlock, 2, 18),
        (3, BasicBlock, 2, 18),
        (2, BasicBlock, 2, 18),
    ),
}
for _width in (18, 30, 32, 40, 44, 48, 64):
    _CONFIGS[f"hrnet_w{_width}"] = (
        (1, Bottleneck, 4, 64),
        (1, BasicBlock, 4, _width),
        (4, BasicBlock, 4, _width),
        (3, BasicBlock, 4, _width),
    )


def _hrnet(builder: str, num_classes: int, keywords: dict) -> nv.Network:
    """The stem, stage 1, then per stage a transition line and its HR module lines, then timm's head."""
    check_keywords(builder, keywords, (HRModule, BasicBlock), ("num_classes",))  # at the builder, not line 5
    (_, stem_block, stem_depth, stem_planes), *stages = _CONFIGS[builder]
    c = stages[0][3]  # the width: branch channels are c, 2c, 4c, 8c at ratios 4, 8, 16, 32
    lines: list = [
        ((3, 1), nv.Input()),
        ((64, 2), nv.Conv2d_BN_ReLU(3)),
        ((64, 4), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
        [((stem_planes * stem_block.default_expansion, 4), stem_block())] * stem_depth,
    ]
    for number, (modules, block, depth, _) in enumerate(stages, start=2):
        branches = [(c * 2**i, 4 * 2**i) for i in range(number)]
        lines.append((*branches, HRTransition()))
        arguments = {"blocks": depth, **({} if block is BasicBlock else {"block": block}), **keywords}
        module, last = HRModule(**arguments), HRModule[-1, f"stage{number}"](**arguments)
        lines += [(*branches, module)] * (modules - 1) + [(*branches, last)]
    # timm's classification head: a Bottleneck per branch to 128, 256, 512, 1024 channels ("incre"),
    # summed from the highest resolution down by 3x3 stride-2 convs, then a 1x1 conv to 2048.
    for i in range(4):
        incre = Bottleneck[nv.output("stage4", i)]()
        if i == 0:
            lines.append(((128, 4), incre))
        else:
            channels, ratio = 128 * 2**i, 4 * 2**i
            lines += [
                ((channels, ratio), nv.Conv2d_BN_ReLU(3, bias=True)),  # timm's downsamp_modules
                ((channels, ratio), incre),
                ((channels, ratio), nv.Add[[-1, -2]]()),
            ]
    lines += [
        ((2048, 32), nv.Conv2d_BN_ReLU(1, bias=True)),  # timm's final_layer
        ((2048, "(1, 1)"), nv.AvgPool2d()),
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # timm's classifier, as a 1x1 conv
    ]
    net = nv.build(lines)
    _init_like_timm(net)
    return net


def _init_like_timm(net: nv.Network) -> None:
    """timm's HRNet init: He-normal (fan_out) convs, norms at weight 1 and bias 0; the classifier
    keeps PyTorch's default (for a 1x1 conv, what nn.Linear gets). Conv biases keep theirs, as in timm."""
    if next(net.parameters()).is_meta:
        return
    head = net.get_submodule(str(len(net.lines) - 1))
    skip = {id(module) for module in head.modules()}
    for module in net.modules():
        if id(module) in skip:
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@register_model(weights=timm_weights)
def hrnet_w18_small(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W18-Small (timm's ``hrnet_w18_small``): one module per stage, two blocks per branch. Keywords go to every HR module."""
    return _hrnet("hrnet_w18_small", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w18_small_v2(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W18-Small-V2 (timm's ``hrnet_w18_small_v2``): 1, 3 and 2 modules in stages 2-4. Keywords go to every HR module."""
    return _hrnet("hrnet_w18_small_v2", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w18(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W18 (timm's ``hrnet_w18``): branches of 18, 36, 72 and 144 channels. Keywords go to every HR module."""
    return _hrnet("hrnet_w18", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w30(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W30 (timm's ``hrnet_w30``). Keywords go to every HR module."""
    return _hrnet("hrnet_w30", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w32(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W32 (timm's ``hrnet_w32``). Keywords go to every HR module."""
    return _hrnet("hrnet_w32", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w40(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W40 (timm's ``hrnet_w40``). Keywords go to every HR module."""
    return _hrnet("hrnet_w40", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w44(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W44 (timm's ``hrnet_w44``). Keywords go to every HR module."""
    return _hrnet("hrnet_w44", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w48(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W48 (timm's ``hrnet_w48``). Keywords go to every HR module."""
    return _hrnet("hrnet_w48", num_classes, module_keywords)


@register_model(weights=timm_weights)
def hrnet_w64(num_classes: int = 1000, **module_keywords: Any) -> nv.Network:
    """HRNet-W64 (timm's ``hrnet_w64``). Keywords go to every HR module."""
    return _hrnet("hrnet_w64", num_classes, module_keywords)
