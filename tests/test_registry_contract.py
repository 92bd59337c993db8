"""The contract every registered model keeps, as timm's tests/test_models.py holds its registry to:
one parametrized test over ``neurlink.list_models()``, so a new family is covered by being registered.

Each model builds on the meta device with its reference's parameter count (a model registered without
a reference count fails here), runs at two input sizes, gets a finite gradient for every parameter,
round-trips ``save_pretrained``/``from_pretrained`` and ``fx.symbolic_trace`` to the same outputs.
That CPU run is slow (``pytest -m slow``) for the largest models and for those whose builder differs
from another's in numbers only (``VARIANT_OF``); every model's meta count runs in every run.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from networks import (
    FAMILY_PARAMETERS,
    MNASNET_PARAMETERS,
    PLAIN_PARAMETERS,
    SEGMENTATION_PARAMETERS,
    SHUFFLENET_PARAMETERS,
    TRANSFORMER_PARAMETERS,
    count,
)
from test_densenet import PARAMETERS as DENSENET_PARAMETERS
from test_hrnet import PARAMETERS as HRNET_PARAMETERS
from test_inception import PARAMETERS as INCEPTION_PARAMETERS
from test_regnet import PARAMETERS as REGNET_PARAMETERS
from test_yolo import PARAMETERS as YOLO_PARAMETERS
from test_zoo import PARAMETERS as RESNET_PARAMETERS
from torch import fx

import neurlink

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

REFERENCE_PARAMETERS = {
    **RESNET_PARAMETERS,
    **FAMILY_PARAMETERS,
    **SEGMENTATION_PARAMETERS,
    **HRNET_PARAMETERS,
    **TRANSFORMER_PARAMETERS,
    **REGNET_PARAMETERS,
    **SHUFFLENET_PARAMETERS,
    **MNASNET_PARAMETERS,
    **PLAIN_PARAMETERS,
    **INCEPTION_PARAMETERS,
    **DENSENET_PARAMETERS,
    **YOLO_PARAMETERS,
}
LARGE = 45_000_000  # parameters: above this a model's CPU run is marked slow (its count is checked in every run)
# Models whose builder differs from another's in numbers only (depth, width, groups, stage counts, norm
# keywords): their CPU run repeats the same nerves on the same path, so it is slow, while the models
# named (each in every run) keep the contract for them; their counts are checked on meta in every run,
# and test_a_slow_variant_holds_only_nerves_its_stand_ins_run checks they hold no module of their own.
VARIANT_OF = {
    "resnet34": ("resnet18",),
    "resnet101": ("resnet50",),
    "resnext50_32x4d": ("resnet50",),  # grouped middle conv, as the MobileNets' depthwise convs
    **{f"efficientnet_b{i}": ("efficientnet_b0",) for i in range(1, 7)},  # b7 is above LARGE
    "efficientnet_v2_m": ("efficientnet_v2_s",),  # above LARGE too, as is v2_l
    "efficientnet_v2_l": ("efficientnet_v2_s",),
    "hrnet_w18_small_v2": ("hrnet_w18_small",),
    "hrnet_w30": ("hrnet_w18",),
    "hrnet_w32": ("hrnet_w18",),
    "unet_resnet34": ("unet_resnet18",),
    **{f"densenet{depth}": ("densenet121",) for depth in (161, 169, 201)},  # growth, widths and depths
    "unet_resnet50": ("unet_resnet18", "resnet50"),  # the decoder on resnet50's Bottleneck encoder
    # the other widths, depths and group widths (those above LARGE are slow anyway)
    **{f"regnet_y_{size}": ("regnet_y_400mf",) for size in ("800mf", "1_6gf", "3_2gf", "8gf")},
    **{f"regnet_x_{size}": ("regnet_x_400mf",) for size in ("800mf", "1_6gf", "3_2gf", "8gf")},
    **{f"shufflenet_v2_{width}": ("shufflenet_v2_x0_5",) for width in ("x1_0", "x1_5", "x2_0")},  # widths
    **{f"mnasnet{alpha}": ("mnasnet0_5",) for alpha in ("0_75", "1_0", "1_3")},  # depth multipliers
    "squeezenet1_0": ("squeezenet1_1",),  # other Fire widths and pool positions (AlexNet and VGG are above LARGE)
    **{f"yolov8{scale}": ("yolov8n",) for scale in "sml"},  # Ultralytics' widths and depths (x is above LARGE)
    **{f"yolo11{scale}": ("yolo11n",) for scale in "sml"},  # also C3k in every C3k2 (yolo11n has C3k rows)
}


# a second size for the models that, as their references, refuse 72x56: AlexNet takes 63x63 and up
SECOND_SIZE = {"alexnet": (72, 65)}
# the sizes (two in eval, one in training) of the models that, as their references, refuse 64x64: Inception-v3
# takes 75x75 and up, and in training about 299 and up (its auxiliary head's 5x5 pool and conv)
SIZES = {"inception_v3": ((75, 75), (80, 97), (299, 299))}


def _slow(name: str) -> bool:
    return REFERENCE_PARAMETERS[name] > LARGE or name in VARIANT_OF


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [t for item in value for t in _tensors(item)]


def test_every_registered_model_has_a_reference_count() -> None:
    assert sorted(REFERENCE_PARAMETERS) == neurlink.list_models()


@pytest.mark.parametrize("name", neurlink.list_models())
def test_builds_on_meta_with_its_references_parameter_count(name: str) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name)
    assert count(net) == REFERENCE_PARAMETERS[name]


def _module_types(name: str) -> set[type]:
    with torch.device("meta"):
        net = neurlink.create_model(name)
    return {type(module) for module in net.modules() if module is not net}


@pytest.mark.parametrize("name", sorted(VARIANT_OF))
def test_a_slow_variant_holds_only_nerves_its_stand_ins_run(name: str) -> None:
    stand_ins = VARIANT_OF[name]
    assert all(not _slow(other) for other in stand_ins), stand_ins
    assert _module_types(name) <= set().union(*map(_module_types, stand_ins))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if _slow(n) else n for n in neurlink.list_models()]
)
def test_runs_trains_saves_and_traces(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    net = (
        neurlink.create_model(name, num_classes=7) if "num_classes" in _keywords(name) else neurlink.create_model(name)
    )
    first, second, training = SIZES.get(name, ((64, 64), SECOND_SIZE.get(name, (72, 56)), (64, 64)))
    net.eval()
    with torch.no_grad():
        outputs = {size: _tensors(net(torch.randn(1, 3, *size))) for size in (first, second)}
    for (h, w), tensors in outputs.items():
        assert all(t.isfinite().all() for t in tensors), (h, w)
    net.train()
    loss = sum(t.float().square().mean() for t in _tensors(net(torch.randn(2, 3, *training))))
    loss.backward()
    missing = [  # (a frozen parameter, YOLO's DFL bins, has none to get)
        key for key, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.isfinite().all())
    ]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"
    net.zero_grad(set_to_none=True)
    net.eval()
    x = torch.randn(1, 3, *first)
    with torch.no_grad():
        expected = _tensors(net(x))
        net.save_pretrained(tmp_path)
        again = neurlink.from_pretrained(tmp_path)
        for ours, theirs in zip(_tensors(again(x)), expected, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        traced = fx.symbolic_trace(net)
        for ours, theirs in zip(_tensors(traced(x)), expected, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def _keywords(name: str) -> set[str]:
    return set(inspect.signature(getattr(neurlink, name)).parameters)
