"""torchvision's ``features`` + ``classifier`` families (MobileNetV2/V3, EfficientNet V1 and V2, ConvNeXt):
the mapping of their keys, derived by walking the lines and the blocks' sub-lines.

Up to the global pooling, every line with weights is one item of torchvision's ``features``: a conv
line (conv, norm, act) is a ``Conv2dNormActivation`` (``features.i.0``, ``features.i.1``), a
``LayerNorm2d`` line and the conv line after it are ConvNeXt's downsampling (``features.i.0``,
``features.i.1``), a MobileNet block is one item (``features.i.conv`` in MobileNetV2,
``features.i.block`` in V3), and consecutive EfficientNet or ConvNeXt blocks declaring the same
dims are one stage (``features.i.0.block``, ``features.i.1.block``, ...), EfficientNetV2's
``FusedMBConv`` stages as its ``MBConv`` stages. After the pooling every module is one item of
``classifier``, counted as torchvision's ``Sequential`` counts them: a dropout, a conv line (its
``Linear``, and its activation), a ``LayerNorm2d`` line (and ConvNeXt's ``Flatten``).
Inside a block, the sub-lines are the items of its ``Sequential`` in order; MobileNetV2 writes a
conv without activation as a plain conv and a norm (two items), ConvNeXt has a ``Permute`` after
its depthwise conv and keeps its layer scale as ``layer_scale``.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...models.convnext import ConvNeXtBlock
from ...models.efficientnet import FusedMBConv, MBConv
from ...models.mobilenet import InvertedBottleneck
from ...nerves import ConvNd, LayerNorm2d, LayerScale, PointwiseLinear, SqueezeExcitation
from ...nerves.pool import AvgPoolNd
from .._state_dict import Pair, check_complete, conv_pairs, has_state

_BLOCKS = (InvertedBottleneck, FusedMBConv, ConvNeXtBlock)


def is_features_family(model: nn.Module) -> bool:
    return any(isinstance(module, _BLOCKS) for module in model.children())


def features_pairs(model: nn.Module, lines: list | None = None, family: str | None = None) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order.

    ``lines`` ((name, module) pairs) walks only those lines, a backbone's ``features`` (of
    ``family``), and leaves the check that every tensor is mapped to the caller.
    """
    backbone = lines is not None
    lines = list(model.named_children()) if lines is None else lines
    pool = max((k for k, (_, module) in enumerate(lines) if isinstance(module, AvgPoolNd)), default=len(lines))
    blocks = [module for _, module in lines if isinstance(module, _BLOCKS)]
    family = family or _family(blocks, lines[pool + 1 :])
    pairs: list[Pair] = []
    item, stage_dims, in_stage, norm = -1, None, 0, None
    for name, module in lines[:pool]:
        where = f"line {name} ({type(module).__name__})"
        if isinstance(module, _BLOCKS):
            if norm is not None:
                raise StateDictError(f"line {norm[0]} (LayerNorm2d) is followed by a block, not by a conv")
            dims = module.target_dims[0]
            if family in ("EfficientNet", "ConvNeXt") and stage_dims is not None and dims.same_as(stage_dims):
                in_stage += 1  # the stage goes on
            else:  # a stage's first block changes the dims; a MobileNet block is an item of its own
                item, in_stage = item + 1, 0
                stage_dims = dims if family in ("EfficientNet", "ConvNeXt") else None
            target = f"features.{item}." + (f"{in_stage}." if family in ("EfficientNet", "ConvNeXt") else "")
            inner = list(_block_pairs(module, f"{name}.", target, family))
            # a torchvision block's own parameters (ConvNeXt's layer_scale) come before its children's
            pairs.extend(sorted(inner, key=lambda pair: pair.reference.count(".") > target.count(".")))
            continue
        stage_dims = None
        if not has_state(module):
            continue
        if isinstance(module, LayerNorm2d) and norm is None:
            norm = (name, module)  # ConvNeXt's downsampling: this norm, then the conv of the next line
        elif isinstance(module, ConvNd):
            item += 1
            if norm is not None:
                pairs.extend(_pairs(norm[1], f"{norm[0]}.", {"norm": f"features.{item}.0"}))
                pairs.extend(_pairs(module, f"{name}.", {"conv": f"features.{item}.1"}))
                norm = None
            else:
                pairs.extend(conv_pairs(module, f"{name}.", f"features.{item}.0", f"features.{item}.1"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's {family} has only conv lines, norms before a conv and"
                " blocks before its pooling"
            )
    if norm is not None:
        raise StateDictError(f"line {norm[0]} (LayerNorm2d) is not followed by a conv, as in ConvNeXt's downsampling")
    pairs.extend(_classifier_pairs(lines[pool + 1 :], family))
    if not backbone:
        check_complete(model, pairs, "torchvision", family)
    return pairs


def _family(blocks: list, head: list) -> str:
    if any(isinstance(block, ConvNeXtBlock) for block in blocks):
        return "ConvNeXt"
    if any(isinstance(block, (MBConv, FusedMBConv)) for block in blocks):
        return "EfficientNet"
    # torchvision names a block's layers "conv" in MobileNetV2, "block" in V3: V2's blocks are all
    # ReLU6 without squeeze-and-excitation, every V3 has blocks with SE or ReLU / Hardswish
    v3 = any(
        isinstance(module, (SqueezeExcitation, nn.ReLU, nn.Hardswish)) for block in blocks for module in block.modules()
    )
    return "MobileNetV3" if v3 else "MobileNetV2"


def _classifier_pairs(head: list, family: str) -> Iterator[Pair]:
    item = 0
    for name, module in head:
        if isinstance(module, ConvNd):
            if module._modules.get("norm") is not None:
                raise StateDictError(f"line {name} ({type(module).__name__}) has a norm, but torchvision's Linear none")
            for key in module.state_dict():
                part, _, rest = key.partition(".")
                if part == "conv":
                    yield Pair(f"{name}.{key}", f"classifier.{item}.{rest}", linear=rest == "weight")
            item += 1 + (module._modules.get("act") is not None)  # the Linear, and its activation
        elif isinstance(module, LayerNorm2d):
            yield from _pairs(module, f"{name}.", {"norm": f"classifier.{item}"})
            item += 2  # the norm, and ConvNeXt's Flatten
        elif isinstance(module, nn.Dropout) or not has_state(module):
            item += 1
        else:
            raise StateDictError(
                f"line {name} ({type(module).__name__}) has weights, but torchvision's {family} classifier has"
                " only Linear layers (conv lines here), norms, activations and dropout"
            )


def _block_pairs(block: nn.Module, prefix: str, target: str, family: str) -> Iterator[Pair]:
    container = "conv" if family == "MobileNetV2" else "block"
    item = 0
    for name, module in block.named_children():
        path = f"{prefix}{name}."
        if isinstance(module, ConvNd) and family == "ConvNeXt":
            yield from _pairs(module, path, {"conv": f"{target}block.{item}"})
            item += 2  # the depthwise conv, and the Permute to channels-last
        elif isinstance(module, ConvNd) and family == "MobileNetV2" and module._modules.get("act") is None:
            # MobileNetV2's projection is a plain conv and a norm: two items
            yield from conv_pairs(module, path, f"{target}conv.{item}", f"{target}conv.{item + 1}")
            item += 2
        elif isinstance(module, ConvNd):
            yield from conv_pairs(module, path, f"{target}{container}.{item}.0", f"{target}{container}.{item}.1")
            item += 1
        elif isinstance(module, SqueezeExcitation):
            yield from _pairs(module, path, {"fc1": f"{target}block.{item}.fc1", "fc2": f"{target}block.{item}.fc2"})
            item += 1
        elif isinstance(module, LayerNorm2d):
            yield from _pairs(module, path, {"norm": f"{target}block.{item}"})
            item += 1
        elif isinstance(module, PointwiseLinear):
            yield from _pairs(module, path, {"linear": f"{target}block.{item}"})
            item += 1 + (module._modules.get("act") is not None)
        elif isinstance(module, LayerScale):
            yield Pair(f"{path}scale.weight", f"{target}layer_scale")
        elif has_state(module):
            raise StateDictError(
                f"line {path[:-1]} ({type(module).__name__}) has weights, but a torchvision {family} block has only"
                " convs, norms, squeeze-and-excitation, linear layers and a layer scale"
            )
        # stateless sub-lines (StochasticDepth, Add) are outside torchvision's Sequential


def _pairs(module: nn.Module, prefix: str, children: dict[str, str]) -> Iterator[Pair]:
    """The tensors of ``module``'s children named in ``children``, under their torchvision names;
    any other tensor is left for ``check_complete`` to report."""
    for key in module.state_dict():
        child, _, rest = key.partition(".")
        if child in children:
            yield Pair(prefix + key, f"{children[child]}.{rest}")
