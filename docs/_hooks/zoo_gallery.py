"""An mkdocs hook that writes the model zoo page from the registry, at every build.

Nothing of it is committed: the table (parameters and MACs counted on the meta device), the
diagrams (drawn by ``neurlink.graph``, what ``neurlink graph`` runs) and each family's lines (the
built network's own lines, as written) come from the code the page describes, so they cannot go
stale. What the registry cannot say, the reference each model equals and the test that proves
it, is the table below; ``tests/test_zoo_gallery.py`` checks that every test it names exists.
"""

from __future__ import annotations

import fnmatch
import inspect
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

import neurlink
from neurlink.models import (
    alexnet,
    convnext,
    densenet,
    efficientnet,
    googlenet,
    hrnet,
    inception,
    mnasnet,
    mobilenet,
    regnet,
    resnet,
    segmentation,
    shufflenet,
    squeezenet,
    swin,
    unet,
    vgg,
    vit,
    yolo,
)
from neurlink.models.googlenet import _googlenet, googlenet_lines
from neurlink.tools._lines import table_of

PAGE = "zoo.md"
IMAGES = "images/zoo"
INPUT_SIZE = (1, 3, 224, 224)


@dataclass(frozen=True)
class Family:
    title: str
    patterns: tuple[str, ...]  # fnmatch patterns of the registered names it holds
    shown: str  # the model whose lines and diagram the page shows
    sources: tuple  # the functions that write its lines, builder first
    about: str


FAMILIES = (
    Family(
        "ResNet, ResNeXt and Wide ResNet",
        ("resnet*", "resnext*", "wide_resnet*"),
        "resnet50",
        (resnet.resnet50, resnet._resnet, resnet.backbone_lines, resnet._stage),
        "torchvision's ResNet family. Blocks: `BasicBlock` and `Bottleneck` (`neurlink.models.resnet`).",
    ),
    Family(
        "MobileNetV2 and V3",
        ("mobilenet*",),
        "mobilenet_v3_large",
        (mobilenet.mobilenet_v3_large, mobilenet._mobilenet_v3, mobilenet.v3_features),
        "torchvision's MobileNets. Block: `InvertedResidual` (`neurlink.models.mobilenet`).",
    ),
    Family(
        "EfficientNet",
        ("efficientnet*",),
        "efficientnet_b0",
        (efficientnet.efficientnet_b0, efficientnet._efficientnet, efficientnet._network),
        "torchvision's EfficientNet B0 to B7 and EfficientNetV2 S, M and L. Blocks: `MBConv`, and V2's"
        " `FusedMBConv` (`neurlink.models.efficientnet`).",
    ),
    Family(
        "ConvNeXt",
        ("convnext*",),
        "convnext_tiny",
        (convnext.convnext_tiny, convnext._convnext),
        "torchvision's ConvNeXt. Block: `ConvNeXtBlock` (`neurlink.models.convnext`). The 4x4 and 2x2 convs are"
        ' unpadded as torchvision\'s (`padding="valid"`), so the two agree at every size.',
    ),
    Family(
        "RegNetX and RegNetY",
        ("regnet_*",),
        "regnet_y_400mf",
        (regnet.regnet_y_400mf, regnet._regnet),
        "torchvision's RegNets, widths and depths as torchvision's `BlockParams.from_init_params` computes them"
        " (`stage_params`). Block: `ResBottleneckBlock` (`neurlink.models.regnet`), its sub-lines tagged with"
        " torchvision's names; every conv padded `k // 2`, so the two agree at every size.",
    ),
    Family(
        "ShuffleNetV2",
        ("shufflenet_v2_*",),
        "shufflenet_v2_x1_0",
        (shufflenet.shufflenet_v2_x1_0, shufflenet._shufflenet_v2),
        "torchvision's ShuffleNetV2 0.5x to 2.0x. Unit: `ShuffleInvertedResidual` (`neurlink.models.shufflenet`),"
        " of the nerves `ChannelSplit` and `ChannelShuffle`.",
    ),
    Family(
        "MNASNet",
        ("mnasnet*",),
        "mnasnet1_0",
        (mnasnet.mnasnet1_0, mnasnet._mnasnet),
        "torchvision's MNASNet (B1) at depth multipliers 0.5 to 1.3. Block: `MNASNetBlock`"
        " (`neurlink.models.mnasnet`); widths rounded as torchvision's `_get_depths` (`mnasnet_depths`).",
    ),
    Family(
        "AlexNet",
        ("alexnet",),
        "alexnet",
        (alexnet,),  # neurlink.models.alexnet is the builder, as torchvision.models.alexnet is
        "torchvision's AlexNet: its 11x11 stride-4 stem padded by 2 (`padding=2`) and unpadded 3x3 pools"
        ' (`padding="valid"`) floor as torchvision\'s, so the two agree at every size it takes (from 63x63);'
        " its classifier is Linear lines on vectors, logits `(N, num_classes)`.",
    ),
    Family(
        "VGG",
        ("vgg*",),
        "vgg16_bn",
        (vgg.vgg16_bn, vgg._vgg, vgg.classifier_lines),
        "torchvision's VGG 11, 13, 16 and 19, with and without BatchNorm: 2x2 pools that floor odd sizes"
        ' (`padding="valid"`) as torchvision\'s, so the two agree at every size; logits `(N, num_classes)`.',
    ),
    Family(
        "SqueezeNet",
        ("squeezenet*",),
        "squeezenet1_1",
        (squeezenet.squeezenet1_1, squeezenet._squeezenet),
        "torchvision's SqueezeNet 1.0 and 1.1. Block: `Fire` (`neurlink.models.squeezenet`). The unpadded stem"
        " and the ceil-mode pools (`padding=0, ceil_mode=True`) size every line as torchvision's, so the two"
        " agree at every size; its conv classifier ends at `(N, num_classes, 1, 1)`.",
    ),
    Family(
        "DenseNet",
        ("densenet*",),
        "densenet121",
        (densenet.densenet121, densenet._densenet),
        "torchvision's DenseNet-121/161/169/201. Nerves: `DenseLayer`, `DenseBlock` and `Transition`"
        ' (`neurlink.models.densenet`); the transitions\' 2x2 average pools are unpadded (`padding="valid"`) as'
        " torchvision's, so the two agree at every size.",
    ),
    Family(
        "GoogLeNet",
        ("googlenet",),
        "googlenet",
        (googlenet, _googlenet, googlenet_lines),  # neurlink.models.googlenet is the builder, as torchvision's
        "torchvision's GoogLeNet (Inception v1). Blocks: `Inception` and the auxiliary head `GoogLeNetAux`"
        " (`neurlink.models.googlenet`), sub-lines tagged with torchvision's names. Its ceil-mode pools"
        " (`padding=0, ceil_mode=True`) size every line as torchvision's, so the two agree at every size (from"
        " 15x15); in training it returns `GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`, in eval the logits"
        " `(N, num_classes)` (`AuxLogitsNetwork`).",
    ),
    Family(
        "Inception-v3",
        ("inception_v3",),
        "inception_v3",
        (inception.inception_v3, inception._inception_v3, inception.inception_v3_lines),
        "torchvision's Inception-v3. Blocks: `InceptionA` ... `InceptionE` and the auxiliary head `InceptionAux`"
        ' (`neurlink.models.inception`). The unpadded stem and reductions (`padding="valid"`) floor as'
        " torchvision's, so the two agree at every size it takes (from 75x75; in training, with the auxiliary"
        " head, about 299); in training it returns `InceptionOutputs(logits, aux_logits)`, in eval the logits.",
    ),
    Family(
        "Vision Transformer (ViT)",
        ("vit_*",),
        "vit_b_16",
        (vit.vit_b_16, vit._vit),
        "torchvision's ViTs, token lines ([Transformers in the grammar](transformers.md)). Nerves:"
        " `ToTokens`, `ClassToken`, `PositionEmbedding` (resampled at sizes other than `image_size`),"
        " `TransformerBlock`, `ToVector`.",
    ),
    Family(
        "Swin Transformer v1 and v2",
        ("swin_*",),
        "swin_t",
        (swin.swin_t, swin._swin),
        "torchvision's Swin Transformers. Nerves: `SwinBlock` (`WindowAttention`, shifted windows padded to"
        " whole windows), `PatchMerging`; `version=2` for v2. The 4x4 patchify conv is unpadded as torchvision's"
        ' (`padding="valid"`), so the two agree at every size.',
    ),
    Family(
        "HRNet",
        ("hrnet*",),
        "hrnet_w18_small",
        (hrnet.hrnet_w18_small, hrnet._hrnet),
        "timm's ImageNet HRNets. Nerves: `HRTransition` and `HRModule` (`neurlink.models.hrnet`); each line"
        " declares every branch it carries.",
    ),
    Family(
        "Segmentation: FCN, DeepLabV3, LR-ASPP",
        ("fcn_*", "deeplabv3_*", "lraspp_*"),
        "deeplabv3_resnet50",
        (segmentation.deeplabv3_resnet50, segmentation._resnet_segmentation, segmentation._build),
        "torchvision's segmentation models, `(num_classes=21)`, logits at the input's size. Heads:"
        " `ASPP`, `DeepLabHead`, `FCNHead`, `LRASPPHead` (`neurlink.models.segmentation`).",
    ),
    Family(
        "U-Net",
        ("unet_*",),
        "unet_resnet34",
        (unet.unet_resnet34, unet._unet),
        "segmentation_models_pytorch 0.6.0's `Unet` on a ResNet encoder, `(num_classes=1)`. Block:"
        " `UnetDecoderBlock` (`neurlink.models.unet`).",
    ),
    Family(
        "YOLOv8 and YOLO11 (detection)",
        ("yolov8*", "yolo11*"),
        "yolov8n",
        (yolo.yolov8n, yolo.yolov8, yolo.yolov8_lines),
        "Ultralytics 8.4.190's detectors, `(num_classes=80)`: the raw maps in training, boxes (xywh in pixels)"
        " and class probabilities in eval, at any input size. Blocks: `C2f`, `C3k2`, `SPPF`, `C2PSA`"
        " (`neurlink.models.yolo_blocks`); head: `Detect` (`neurlink.models.yolo`), reading the neck's `p3`,"
        " `p4`, `p5`.",
    ),
)

# Which test proves a model equal to its reference. The fast run compares outputs for some models
# of a family and round-trips the weights of the others; "slow" tests run with `pytest -m slow`.
_REGNET_SLOW = {
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_8gf",
}
# AlexNet, VGG and SqueezeNet whose outputs tests/test_plain_cnns.py compares with -m slow (the rest by default)
_PLAIN_SLOW = {"vgg11", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "squeezenet1_0"}
_SLOW = {
    "densenet161",
    *_REGNET_SLOW,
    *_PLAIN_SLOW,
    "resnet152",
    "resnext101_32x8d",
    "wide_resnet101_2",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "convnext_small",
    "convnext_base",
    "convnext_large",
    "fcn_resnet101",
    "deeplabv3_resnet101",
    "unet_resnet50",
    "swin_s",
    "swin_b",
    "swin_v2_s",
    "swin_v2_b",
    *(f"yolo{version}{scale}" for version in ("v8", "11") for scale in "mlx"),
}
# RegNets whose outputs tests/test_regnet.py compares (the 400MF ones in the default run)
_REGNET_OUTPUTS = {"regnet_y_400mf", "regnet_x_400mf", *_REGNET_SLOW}
_OUTPUTS_COMPARED = {
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "efficientnet_b3",
    "hrnet_w18_small",
    "hrnet_w18_small_v2",
    "hrnet_w18",
    "hrnet_w32",
}


def reference(name: str) -> str:
    """The reference implementation ``name`` equals, as its library spells it."""
    if name.startswith("hrnet"):
        return f'timm.create_model("{name}")'
    if name.startswith("unet_"):
        return f'smp.Unet("{name.removeprefix("unet_")}")'
    if name.startswith(("fcn_", "deeplabv3_", "lraspp_")):
        return f"torchvision.models.segmentation.{name}"
    if name.startswith("yolo"):
        return f'ultralytics DetectionModel("{name}.yaml")'
    return f"torchvision.models.{name}"


def proof(name: str) -> tuple[str, str]:
    """The pytest node id of the test that holds ``name`` to its reference, and what it checks."""
    if name.startswith(("resnet", "resnext", "wide_resnet")):
        return f"tests/test_zoo.py::test_builder_is_torchvision[{name}]", "outputs and weights both ways"
    if name == "efficientnet_v2_s":
        return "tests/test_efficientnet_v2.py::test_efficientnet_v2_s_is_torchvision", "outputs and weights both ways"
    if name in _REGNET_OUTPUTS:
        return f"tests/test_regnet.py::test_torchvision_weights_give_torchvision_outputs[{name}]", "outputs"
    if name.startswith("regnet_"):
        return f"tests/test_regnet.py::test_keys_and_shapes_both_ways_on_meta[{name}]", (
            "stages, keys and shapes both ways (its blocks are the 400MF's)"
        )
    if name == "shufflenet_v2_x1_0":
        return "tests/test_shufflenet.py::test_shufflenet_v2_x1_0_is_torchvision_at_every_size", "outputs and stages"
    if name.startswith("shufflenet_v2_"):
        return f"tests/test_shufflenet.py::test_the_other_widths_are_torchvision[{name}]", "outputs"
    if name in ("mnasnet1_0", "mnasnet0_75"):
        return f"tests/test_mnasnet.py::test_outputs_are_torchvisions_at_every_size[{name}]", "outputs"
    if name.startswith("mnasnet"):
        return f"tests/test_mnasnet.py::test_the_other_multipliers_are_torchvision[{name}]", "outputs"
    if name.startswith(("alexnet", "vgg", "squeezenet")):
        node = f"tests/test_plain_cnns.py::test_torchvision_weights_give_torchvision_outputs_and_round_trip[{name}]"
        return node, "outputs and weights both ways"
    if name in ("densenet121", "densenet161"):
        return f"tests/test_densenet.py::test_torchvision_weights_give_torchvision_outputs[{name}]", "outputs"
    if name.startswith("densenet"):
        return f"tests/test_densenet.py::test_counts_keys_and_shapes_are_torchvisions_on_meta[{name}]", (
            "counts, keys and shapes both ways (its blocks are DenseNet-121's)"
        )
    if name in ("googlenet", "inception_v3"):
        size = "77x65" if name == "googlenet" else "80x97"
        return f"tests/test_inception.py::test_eval_outputs_are_torchvisions[{name}-{size}]", (
            "outputs (eval and training, tests/test_inception.py) and weights both ways"
        )
    if name in ("yolov8n", "yolo11n"):
        return f"tests/test_yolo.py::test_eval_output_is_ultralytics[{name}]", (
            "outputs at two sizes and any size, weights both ways (and yolov8n's training maps, loss and gradients)"
        )
    if name in ("yolov8s", "yolo11s"):
        return f"tests/test_yolo.py::test_eval_output_is_ultralytics[{name}]", "outputs at two sizes"
    if name.startswith("yolo"):
        return f"tests/test_yolo.py::test_counts_keys_and_shapes_are_ultralytics[{name}]", (
            "counts, keys and shapes both ways (its blocks are the n and s models')"
        )
    if name == "convnext_tiny":
        return "tests/test_families.py::test_convnext_is_torchvision", "outputs"
    if name == "vit_b_32":
        return "tests/test_vit.py::test_vit_b_32_is_torchvision_outputs_and_gradients", "outputs and gradients"
    if name == "vit_b_16":
        return "tests/test_vit.py::test_vit_b_16_is_torchvision_at_its_image_size[224]", "outputs"
    if name.startswith("vit_"):
        return f"tests/test_registry_contract.py::test_builds_on_meta_with_its_references_parameter_count[{name}]", (
            "parameters (its blocks are vit_b_16's)"
        )
    if name in ("swin_t", "swin_v2_t"):
        return f"tests/test_swin.py::test_torchvision_weights_give_torchvision_outputs[{name}]", "outputs"
    if name.startswith("swin"):
        return f"tests/test_swin.py::test_the_larger_models_give_torchvision_outputs[{name}]", "outputs"
    if name in _OUTPUTS_COMPARED and name.startswith("hrnet"):
        return f"tests/test_hrnet.py::test_timm_weights_give_timm_outputs[{name}]", "outputs"
    if name in _OUTPUTS_COMPARED:
        return f"tests/test_families.py::test_mobile_families_are_torchvision[{name}]", "outputs"
    if name.startswith("hrnet"):
        node = f"tests/test_hrnet.py::test_every_builder_trains_and_round_trips_through_timm[{name}]"
        return node, "weights both ways"
    if name.startswith(("efficientnet", "convnext")):
        return f"tests/test_families.py::test_weights_round_trip[{name}]", "weights both ways"
    if name.startswith("unet_resnet"):
        return f"tests/test_segmentation.py::test_smp_outputs[{name.removeprefix('unet_resnet')}]", "outputs"
    return f"tests/test_segmentation.py::test_torchvision_outputs[{name}]", "outputs and weights both ways"


def family_of(name: str) -> Family:
    for family in FAMILIES:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in family.patterns):
            return family
    raise ValueError(f"the registered model {name!r} belongs to no family of {__file__}: add it there")


def _meta_model(name: str) -> torch.nn.Module:
    with torch.device("meta"):  # counted and drawn without memory or weights
        return neurlink.create_model(name)


def grammar_lines(net) -> str:
    """The network's own lines as written, runs of equal lines as ``[line] * n``."""
    written = [entry.written for entry in table_of(net).entries]
    out, k = [], 0
    while k < len(written):
        run = 1
        while k + run < len(written) and written[k + run] == written[k]:
            run += 1
        out.append(f"    [{written[k]}] * {run}," if run > 1 else f"    {written[k]},")
        k += run
    return "[\n" + "\n".join(out) + "\n]"


def _svg(net) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "net.svg")
        neurlink.graph(net, depth=1).render(str(path))  # without Graphviz: an error saying how to install it
        return path.read_bytes()


def _row(name: str) -> tuple[int, str]:
    """The model's table row, and its parameter count to order the rows by."""
    summary = neurlink.summary(_meta_model(name), INPUT_SIZE)
    node, checks = proof(name)
    slow = ", slow" if name in _SLOW else ""
    return summary.total_params, (
        f"| `{name}` | {summary.total_params:,} | {summary.total_macs / 1e9:.2f} | `{reference(name)}` "
        f"| `{node}`<br>{checks}{slow} |"
    )


def _source(function) -> str:
    return inspect.getsource(inspect.unwrap(function)).rstrip()


def _family_section(family: Family, names: list[str], images: dict[str, bytes]) -> list[str]:
    net = _meta_model(family.shown)
    image = f"{IMAGES}/{family.shown}.svg"
    images[image] = _svg(net)
    module = inspect.unwrap(family.sources[0]).__module__
    sources = "\n\n".join(_source(function) for function in family.sources)
    return [
        f"## {family.title}",
        "",
        family.about,
        "",
        '<div class="zoo-table" markdown>',
        "",
        "| model | parameters | GMACs at 224x224 | equals | proved by (what the test compares) |",
        "|---|--:|--:|---|---|",
        *(row for _, row in sorted(_row(name) for name in names)),
        "",
        "</div>",
        "",
        f"`{family.shown}` as written in the grammar (its built lines; equal lines in a row as `[line] * n`):",
        "",
        "```python",
        grammar_lines(net),
        "```",
        "",
        f'??? note "The builder that writes these lines (`{module}`)"',
        "",
        "    ```python",
        *(("    " + line).rstrip() for line in sources.splitlines()),
        "    ```",
        "",
        f"The diagram of `{family.shown}` (`neurlink graph {family.shown} -o {family.shown}.svg`;"
        " click to open it full size):",
        "",
        '<div class="zoo-diagram" markdown>',
        "",
        f"[![the lines of {family.shown}]({image})]({image})",
        "",
        "</div>",
        "",
    ]


def zoo_page() -> tuple[str, dict[str, bytes]]:
    """The zoo page's Markdown and its diagrams (path -> SVG bytes)."""
    names = neurlink.list_models()
    members: dict[str, list[str]] = {family.title: [] for family in FAMILIES}
    for name in names:
        members[family_of(name).title].append(name)
    images: dict[str, bytes] = {}
    head = [
        "---",
        "hide: [toc]",  # the tables need the width; the navigation lists the families
        "---",
        "",
        "# Model zoo",
        "",
        f"The {len(names)} models of `neurlink.list_models()`, each `neurlink.create_model(name, **keywords)`"
        " or `neurlink.<name>(...)`. This page is generated from the registry when the site is built:"
        f" parameters and multiply-accumulates (MACs, as `neurlink.summary` counts them, at {INPUT_SIZE[2]}x"
        f"{INPUT_SIZE[3]}, batch 1) are counted on the meta device, the diagrams are drawn by `neurlink.graph`"
        " and the lines are those of the built network. Each model names the reference it equals, layer for"
        " layer, and the pytest node id of the test that proves it (those marked slow run with"
        " `pytest -m slow`; every model's parameter count is checked in the default run).",
        "",
    ]
    body = []
    for family in FAMILIES:
        body += _family_section(family, members[family.title], images)
    return "\n".join(head + body), images


def on_files(files, config):
    """mkdocs: add the generated page and its diagrams to the site's files."""
    from mkdocs.structure.files import File

    page, images = zoo_page()
    files.append(File.generated(config, PAGE, content=page))
    for path, svg in images.items():
        files.append(File.generated(config, path, content=svg))
    return files
