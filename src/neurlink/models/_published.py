"""Published weights by name, as torchvision's builders take them: ``neurlink.resnet50(weights="DEFAULT")``.

``weights`` is what torchvision accepts: a name of the model's weights enum (``"IMAGENET1K_V2"``,
``"DEFAULT"``, ``"ResNet50_Weights.IMAGENET1K_V2"``) or the enum member itself. The file is fetched
by torchvision's own mechanism (``weights.get_state_dict``: torch hub's cache under ``TORCH_HOME``,
its file names and hash checks on download; the cached file is used without a network) and mapped
with :func:`~neurlink.interop.load_torchvision`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import NeurlinkError

__all__ = ["torchvision_weights", "timm_weights", "register_weights_loader"]

# The functions that map a reference library's state_dict into a network, by library: interop
# registers its own (``interop/torchvision``), so that the zoo never imports interop.
_LOADERS: dict[str, Callable[[nn.Module, dict], nn.Module]] = {}


def register_weights_loader(library: str, load: Callable[[nn.Module, dict], nn.Module]) -> None:
    """Make ``load(network, state_dict)`` the loader of ``library``'s published weights."""
    _LOADERS[library] = load


def torchvision_weights(network: nn.Module, name: str, weights: Any, keywords: dict) -> nn.Module:
    """Load torchvision's published ``weights`` of model ``name`` into ``network``."""
    try:
        import torchvision
    except ImportError:
        raise NeurlinkError(
            f"{name}(weights={weights!r}) fetches torchvision's weights, but torchvision is not installed",
            allowed="pip install torchvision",
        ) from None
    enum = torchvision.models.get_model_weights(name)
    try:
        chosen = enum.verify(weights)
    except (KeyError, TypeError, ValueError) as error:
        reason = error.args[0] if error.args else error
        raise NeurlinkError(
            f"{name}: weights={weights!r} names no published weights of {enum.__name__} ({reason})",
            allowed="'DEFAULT', " + ", ".join(repr(member.name) for member in enum) + f", or a {enum.__name__} member",
        ) from None
    classes = len(chosen.meta.get("categories") or ())
    wanted = keywords.get("num_classes", 1000)
    if classes and wanted != classes:
        raise NeurlinkError(
            f"{name}: {enum.__name__}.{chosen.name} has {classes} classes, but num_classes={wanted}",
            allowed=f"num_classes={classes} (the default) with these weights; replace the head afterwards to fine-tune",
        )
    if name.startswith(
        "vit_"
    ):  # a ViT's learned positions are for one image size (torchvision sets it from the weights)
        built = keywords.get("image_size", 224)
        size = chosen.meta["min_size"][0]
        if built != size:
            raise NeurlinkError(
                f"{name}: {enum.__name__}.{chosen.name} is for image_size={size}, but the network is built for {built}",
                allowed=f"{name}(weights={weights!r}, image_size={size}); the network then takes any size",
            )
    try:
        state_dict = chosen.get_state_dict(progress=False, check_hash=True)  # what torchvision's builders call
    except OSError as error:  # no network (URLError), or a cache that cannot be written
        import os

        from torch.hub import get_dir

        file = os.path.join(get_dir(), "checkpoints", os.path.basename(chosen.url))
        raise NeurlinkError(
            f"{name}: {enum.__name__}.{chosen.name} is not in torch hub's cache and cannot be downloaded"
            f" ({type(error).__name__}: {error})",
            allowed=f"a network, or the file {chosen.url} placed at {file} (TORCH_HOME sets the cache)",
        ) from None
    return _LOADERS["torchvision"](network, state_dict)  # neurlink's __init__ imports interop, which registers it


def timm_weights(network: nn.Module, name: str, weights: Any, keywords: dict) -> nn.Module:
    """HRNet's published weights are timm's, which timm fetches: say how to load them."""
    raise NeurlinkError(
        f"{name}(weights={weights!r}): HRNet's published weights are timm's, not fetched by name here",
        allowed=f"neurlink.interop.load_timm(neurlink.{name}(), timm.create_model({name!r}, pretrained=True))",
    )
