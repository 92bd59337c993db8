"""segmentation_models_pytorch's U-Net weights in and out of neurlink networks.

The key mapping is derived from the lines: those before the first
:class:`~neurlink.models.unet.UnetDecoderBlock` are the ``encoder`` (smp's ResNet encoders are
torchvision's ResNets without ``fc``: ``encoder.conv1``, ``encoder.layer1.0.conv1``), decoder line
``k`` is ``decoder.blocks.{k}`` (its two convs ``conv1.0``/``conv1.1`` and ``conv2.0``/``conv2.1``),
and the conv line after the decoder the ``segmentation_head.0``. So a U-Net a user writes in this
shape maps too, not only the zoo's.

>>> import torch, neurlink, segmentation_models_pytorch as smp
>>> from neurlink.interop import load_smp, to_smp_state_dict
>>> reference = smp.Unet("resnet18", encoder_weights=None, classes=2).eval()
>>> net = load_smp(neurlink.unet_resnet18(num_classes=2), reference).eval()
>>> x = torch.randn(1, 3, 64, 64)
>>> with torch.no_grad():
...     torch.testing.assert_close(net(x), reference(x))
>>> reference.load_state_dict(to_smp_state_dict(net))
<All keys matched successfully>
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import StateDictError
from ..models.unet import UnetDecoderBlock
from ..nerves import ConvNd, Interpolate
from ._state_dict import (
    Pair,
    check_complete,
    conv_pairs,
    export_pairs,
    has_state,
    load_pairs,
    require_network,
    tagged_pairs,
)
from .torchvision._resnet import resnet_pairs

__all__ = ["load_smp", "to_smp_state_dict"]

Model = TypeVar("Model", bound=nn.Module)


def load_smp(model: Model, state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Model:
    """Load an smp ``Unet`` ``state_dict`` (or the smp model itself) into ``model``; returns ``model``.

    Strict as :func:`~neurlink.interop.load_torchvision`: every tensor used, every parameter and
    buffer filled, or a :class:`~neurlink.errors.StateDictError` naming the smp and the neurlink key
    of each problem, with ``model`` unchanged.
    """
    require_network(model, "load_smp")
    pairs = _pairs(model)
    if isinstance(state_dict, nn.Module):
        _check_same_computation(model, state_dict)
    load_pairs(model, state_dict, pairs, "smp")
    return model


def _check_same_computation(model: nn.Module, reference: nn.Module) -> None:
    """What smp's model computes beyond its weights, where it can be read: the decoder's resizing mode and
    an activation after the head (the same weights compute something else under another)."""
    blocks = [module for module in model.children() if isinstance(module, UnetDecoderBlock)]
    ours = [sub.mode for block in blocks for sub in block.modules() if isinstance(sub, Interpolate)][:1]
    theirs = [getattr(block, "interpolation_mode", None) for block in getattr(reference.decoder, "blocks", [])][:1]
    if ours and theirs and theirs[0] is not None and ours != theirs:
        raise StateDictError(
            f"smp's decoder resizes with {theirs[0]!r}, this network's with {ours[0]!r}: the same weights compute"
            f" something else (build it with decoder_interpolation={theirs[0]!r})"
        )
    head = getattr(reference, "segmentation_head", None)
    activation = getattr(head[-1], "activation", None) if isinstance(head, nn.Sequential) and len(head) else None
    if activation is not None and not isinstance(activation, nn.Identity):
        raise StateDictError(
            f"smp's model ends in {type(activation).__name__} after its segmentation head, this network in the"
            " head's conv: load smp's model built with activation=None and apply it to the output"
        )


def to_smp_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under smp's keys, for ``smp.Unet("resnet34", ...).load_state_dict``."""
    require_network(model, "to_smp_state_dict")
    return export_pairs(model, _pairs(model), "smp")


def _pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, smp key) for every tensor of ``model``: encoder, decoder blocks, segmentation head."""
    lines = list(model.named_children())
    first = next((k for k, (_, module) in enumerate(lines) if isinstance(module, UnetDecoderBlock)), None)
    if first is None:
        raise StateDictError("this network has no UnetDecoderBlock line; smp's Unet has a decoder of them")
    pairs = [Pair(pair.neurlink, f"encoder.{pair.reference}") for pair in resnet_pairs(model, lines[:first])]
    blocks, head = 0, None
    for name, module in lines[first:]:
        where = f"line {name} ({type(module).__name__})"
        if isinstance(module, UnetDecoderBlock) and head is None:
            pairs.extend(tagged_pairs(module, f"{name}.", f"decoder.blocks.{blocks}.", "smp"))  # conv1, conv2
            blocks += 1
        elif isinstance(module, ConvNd) and head is None:
            head = name
            pairs.extend(conv_pairs(module, f"{name}.", "segmentation_head.0", "segmentation_head.norm"))
        elif has_state(module):
            raise StateDictError(
                f"{where} has weights, but smp's Unet has only decoder blocks and a segmentation head after the encoder"
            )
    check_complete(model, pairs, "smp", "Unet")
    return pairs
