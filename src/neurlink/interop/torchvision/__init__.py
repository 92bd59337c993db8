"""torchvision's weights in and out of neurlink networks: ResNet, MobileNet, EfficientNet, ConvNeXt,
RegNet (``_regnet.py``), ShuffleNetV2 (``_shufflenet.py``), MNASNet (``_mnasnet.py``), AlexNet, VGG and
SqueezeNet (``_plain.py``), GoogLeNet and Inception-v3 (``_inception.py``), the vision transformers (``_vit.py``), and the segmentation models FCN,
DeepLabV3 and LR-ASPP (``_segmentation.py``).

The key mapping is derived from the network itself, walking its lines and the sub-lines of its
blocks in order (``_resnet.py``: ``conv1``, ``layer1.0.conv1``, ``fc``; ``_features.py``:
``features.0.0``, ``features.1.0.block.0.0``, ``classifier.1``), so any network shaped like one
of torchvision's maps, not only the zoo's. torchvision's ``Linear`` classifiers are our 1x1 convs:
their ``[N, C]`` weights are our ``[N, C, 1, 1]``.

>>> import torch, torchvision, neurlink
>>> from neurlink.interop import load_torchvision, to_torchvision_state_dict
>>> reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
>>> net = load_torchvision(neurlink.resnet18(num_classes=10), reference.state_dict()).eval()
>>> x = torch.randn(1, 3, 40, 40)
>>> torch.testing.assert_close(net(x).flatten(1), reference(x))
>>> reference.load_state_dict(to_torchvision_state_dict(net))
<All keys matched successfully>
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

from ...models._published import register_weights_loader
from .._state_dict import Pair, export_pairs, load_pairs, require_network
from ._densenet import current_keys, densenet_pairs, is_densenet
from ._features import features_pairs, is_features_family
from ._inception import googlenet_pairs, inception_v3_pairs, is_googlenet, is_inception_v3
from ._mnasnet import is_mnasnet, mark_version, mnasnet_pairs
from ._plain import is_plain, plain_pairs
from ._regnet import is_regnet, regnet_pairs
from ._resnet import resnet_pairs
from ._segmentation import is_segmentation, segmentation_pairs
from ._shufflenet import is_shufflenet, shufflenet_pairs
from ._swin import is_swin, swin_pairs
from ._vit import is_vit, vit_pairs

__all__ = ["load_torchvision", "to_torchvision_state_dict"]

Model = TypeVar("Model", bound=nn.Module)


def load_torchvision(model: Model, state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Model:
    """Load a torchvision ``state_dict`` of the ResNet, MobileNet, EfficientNet, ConvNeXt, RegNet, ShuffleNetV2,
    MNASNet, AlexNet, VGG, SqueezeNet, GoogLeNet, Inception-v3 or ViT family or of a segmentation model (FCN, DeepLabV3, LR-ASPP) (or
    the torchvision model itself) into ``model``.

    Strict: every tensor of ``state_dict`` is used and every parameter and buffer of ``model``
    is filled; otherwise a :class:`~neurlink.errors.StateDictError` (a ``NeurlinkError``) names
    the torchvision and the neurlink key of each problem, and ``model`` is left unchanged. The
    one exception is BatchNorm's ``num_batches_tracked``, which checkpoints saved before
    PyTorch 0.4.1 lack: as ``BatchNorm`` itself does, it is then set to 0. Returns ``model``.
    """
    require_network(model, "load_torchvision")
    if is_densenet(model):  # torchvision's published DenseNet files keep keys of an older layout
        state_dict = current_keys(state_dict)
    load_pairs(model, state_dict, _pairs(model), "torchvision")
    return model


def to_torchvision_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under torchvision's keys, for ``torchvision.models.resnet50().load_state_dict``.

    The inverse of :func:`load_torchvision`. Like ``state_dict()``, the tensors share memory with
    the model's (the head's weight is a ``[N, C]`` view of the conv weight).
    """
    require_network(model, "to_torchvision_state_dict")
    state_dict = export_pairs(model, _pairs(model), "torchvision")
    return mark_version(state_dict) if is_mnasnet(model) else state_dict


def _pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    if is_vit(model):
        return vit_pairs(model)
    if is_swin(model):
        return swin_pairs(model)
    if is_segmentation(model):
        return segmentation_pairs(model)
    if is_features_family(model):
        return features_pairs(model)
    if is_regnet(model):
        return regnet_pairs(model)
    if is_shufflenet(model):
        return shufflenet_pairs(model)
    if is_mnasnet(model):
        return mnasnet_pairs(model)
    if is_densenet(model):
        return densenet_pairs(model)
    if is_googlenet(model):
        return googlenet_pairs(model)
    if is_inception_v3(model):
        return inception_v3_pairs(model)
    if is_plain(model):
        return plain_pairs(model)
    return resnet_pairs(model)


register_weights_loader("torchvision", load_torchvision)  # neurlink.resnet50(weights="DEFAULT") maps with it
