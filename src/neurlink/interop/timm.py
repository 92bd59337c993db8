"""timm's HRNet weights in and out of neurlink networks.

The key mapping is derived from the network's lines, in order: the first two conv lines are
timm's stem (``conv1``/``bn1``, ``conv2``/``bn2``); the ResNet blocks after them are ``layer1``;
every :class:`~neurlink.models.hrnet.HRTransition` line starts a stage (``transition1`` ...),
whose :class:`~neurlink.models.hrnet.HRModule` lines are ``stage2.0``, ``stage2.1``, ...; inside
them the sub-lines are tagged with timm's names (``branches.{i}.{k}``, ``fuse_layers.{i}.{j}``).
After the last stage, the ResNet blocks are the head's ``incre_modules``, the conv lines its
``downsamp_modules`` and ``final_layer``, and the last conv the ``classifier`` (a ``[N, C]``
Linear weight as our 1x1 conv's ``[N, C, 1, 1]``). So an HRNet a user writes in this shape maps
too, not only the zoo's.

>>> import torch, timm, neurlink
>>> from neurlink.interop import load_timm, to_timm_state_dict
>>> reference = timm.create_model("hrnet_w18_small", num_classes=10).eval()
>>> net = load_timm(neurlink.hrnet_w18_small(num_classes=10), reference).eval()
>>> x = torch.randn(1, 3, 64, 64)
>>> torch.testing.assert_close(net(x).flatten(1), reference(x))
>>> reference.load_state_dict(to_timm_state_dict(net))
<All keys matched successfully>
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import StateDictError
from ..models.hrnet import HRModule, HRTransition
from ..nerves import ConvNd
from ._state_dict import (
    Pair,
    block_pairs,
    check_complete,
    conv_pairs,
    export_pairs,
    has_state,
    is_block,
    linear_pairs,
    require_network,
    tagged_pairs,
)
from ._state_dict import load_pairs as _load_pairs

__all__ = ["load_timm", "to_timm_state_dict"]

Model = TypeVar("Model", bound=nn.Module)


def load_timm(model: Model, state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Model:
    """Load a timm HRNet ``state_dict`` (or the timm model itself) into ``model``; returns ``model``.

    Strict as :func:`~neurlink.interop.load_torchvision`: every tensor used, every parameter and
    buffer filled, or a :class:`~neurlink.errors.StateDictError` naming the timm and the neurlink
    key of each problem, with ``model`` unchanged.
    """
    require_network(model, "load_timm")
    pairs = _pairs(model)
    pool = (
        getattr(getattr(state_dict, "global_pool", None), "pool_type", "avg")
        if isinstance(state_dict, nn.Module)
        else "avg"
    )
    if pool != "avg":  # the same weights, another head: timm's global_pool='max' or 'avgmax'
        raise StateDictError(
            f"timm's model pools with global_pool={pool!r}, this network averages: the same weights compute"
            " something else (load a timm model made with global_pool='avg')"
        )
    _load_pairs(model, state_dict, pairs, "timm")
    return model


def to_timm_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under timm's keys, for ``timm.create_model("hrnet_w18").load_state_dict``."""
    require_network(model, "to_timm_state_dict")
    return export_pairs(model, _pairs(model), "timm")


def _pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, timm key) for every tensor of ``model``, walking its lines in order."""
    pairs: list[Pair] = []
    stem = layer1 = stage = module_number = 0
    incre: list[str] = []  # the head's blocks
    head_convs: list[tuple[str, ConvNd]] = []
    for name, module in model.named_children():
        if not has_state(module) and not isinstance(module, HRTransition):  # Input, pooling, activations, sums
            continue  # (a transition without weights still starts a stage)
        where = f"line {name} ({type(module).__name__})"
        prefix = f"{name}."
        if isinstance(module, HRTransition):
            if incre or head_convs:
                raise StateDictError(f"{where} comes after the head; timm's HRNet ends with its head")
            stage, module_number = stage + 1, 0
            pairs.extend(_transition_pairs(module, prefix, f"transition{stage}."))
        elif isinstance(module, HRModule):
            if stage == 0 or incre or head_convs:
                raise StateDictError(f"{where} is not after an HRTransition line, as timm's stages are")
            pairs.extend(_module_pairs(module, prefix, f"stage{stage + 1}.{module_number}."))
            module_number += 1
        elif is_block(module) and stage == 0 and stem == 2:
            pairs.extend(block_pairs(module, prefix, f"layer1.{layer1}.", "timm"))
            layer1 += 1
        elif is_block(module) and stage > 0:
            pairs.extend(block_pairs(module, prefix, f"incre_modules.{len(incre)}.0.", "timm"))
            incre.append(name)
        elif isinstance(module, ConvNd) and stage == 0 and stem < 2:
            stem += 1
            pairs.extend(conv_pairs(module, prefix, f"conv{stem}", f"bn{stem}"))
        elif isinstance(module, ConvNd) and incre:
            head_convs.append((name, module))
        else:
            raise StateDictError(
                f"{where} has weights, but timm's HRNet has a stem of two convs, ResNet blocks, transitions and"
                " HR modules, then a head of blocks and convs here"
            )
    if len(head_convs) < 2:
        raise StateDictError("timm's HRNet ends with a final 1x1 conv layer and a classifier, which this network lacks")
    *downsamples, (final_name, final), (classifier_name, classifier) = head_convs
    for number, (name, conv) in enumerate(downsamples):
        pairs.extend(conv_pairs(conv, f"{name}.", f"downsamp_modules.{number}.0", f"downsamp_modules.{number}.1"))
    pairs.extend(conv_pairs(final, f"{final_name}.", "final_layer.0", "final_layer.1"))
    pairs.extend(linear_pairs(classifier, f"{classifier_name}.", "classifier"))
    check_complete(model, pairs, "timm", "HRNet")
    return pairs


def _transition_pairs(transition: HRTransition, prefix: str, target: str) -> Iterator[Pair]:
    """A transition's conv tagged ``branch{i}`` (an existing branch's) is timm's ``transition{t}.{i}.0``
    and ``.1``; one tagged ``branch{i}.{k}`` (a new branch's chain) ``transition{t}.{i}.{k}.0`` and ``.1``."""
    return tagged_pairs(transition, prefix, target, "timm", key=lambda tag: tag.removeprefix("branch"))


def _module_pairs(module: HRModule, prefix: str, target: str) -> Iterator[Pair]:
    """An HR module's sub-lines are tagged with timm's names: ``branches.{i}.{k}`` (its blocks), then
    ``fuse_layers.{i}.{j}`` (up: a 1x1 conv) and ``fuse_layers.{i}.{j}.{k}`` (down: stride-2 convs)."""
    return tagged_pairs(module, prefix, target, "timm")
