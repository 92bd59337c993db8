"""Definitions and reference figures shared by several test files."""

import torch
from torch import nn

import neurlink.nerves as nv
from neurlink.program import program_of


def line_by_line(net: nv.Network, inputs):
    """The plain meaning of a network: every line's current module called, in order, on the
    lines it selects (the reference the live-forward tests hold ``net(x)`` to), by the one loop
    every tool runs lines with (``neurlink.program``), with no flat forward, check or hook of its own.
    Its own selections are held by the zoo's tests against torchvision's hand-written forwards."""
    given = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    base = next((e for e in net.lines if e.base), next(e for e in net.lines if e.is_input))
    program = program_of(net._table)
    base_shape = given[base.input_position].shape[program.base_dims]  # a map's size or a sequence's length

    def call(step, module, args):
        if getattr(module, "uses_base_shape", False):
            return module(*args, base_shape=base_shape)
        return module(*args)

    return program.result(program.run(net, given, call))


class Residual(nv.Nerve):
    """x + conv(x): a block of two lines, whose Add also selects the block's input (line 0)."""

    def __init__(self) -> None:
        super().__init__()
        dims = self.target_dims[0]
        self.add([(dims, nv.Conv2d_BN_ReLU(3)), (dims, nv.Add[[0, -1]]())])


class Split(nv.Nerve):
    """Two outputs: the first and the last four channels."""

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1, outputs=2)

    def forward(self, x):
        return x[:, :4], x[:, 4:]


def small() -> nv.Network:
    """A block (Add selecting the block's input), two outputs, a Concat skip."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
            ((8, 2), Residual()),
            ((4, 2), (4, 2), Split()),
            ((12, 2), nv.Concat[[nv.output(3, 1), "stem"]]()),
            ((12, "(1, 1)"), nv.AvgPool2d()),
            ((10, "(1, 1)"), nv.Conv2d(1)),
        ]
    )


# The printout of the neurlink 0.2.2 README for ResNet-18 at (2, 3, 224, 224): every line's output.
SEED_SHAPES = [
    (2, 3, 224, 224),
    (2, 64, 112, 112),
    (2, 64, 56, 56),
    (2, 64, 56, 56),
    (2, 64, 56, 56),
    (2, 128, 28, 28),
    (2, 128, 28, 28),
    (2, 256, 14, 14),
    (2, 256, 14, 14),
    (2, 512, 7, 7),
    (2, 512, 7, 7),
    (2, 512, 1, 1),
    (2, 1000, 1, 1),
]


# torchvision's parameter counts of the zoo's other families (torchvision.models.<name>(weights=None)).
FAMILY_PARAMETERS = {
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "efficientnet_v2_s": 21_458_488,
    "efficientnet_v2_m": 54_139_356,
    "efficientnet_v2_l": 118_515_272,
    "convnext_tiny": 28_589_128,
    "convnext_small": 50_223_688,
    "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
}

# torchvision's vision transformers: ViT and Swin v1/v2 (torchvision.models.<name>(weights=None))
TRANSFORMER_PARAMETERS = {
    "vit_b_16": 86_567_656,
    "vit_b_32": 88_224_232,
    "vit_l_16": 304_326_632,
    "vit_l_32": 306_535_400,
    "vit_h_14": 632_045_800,
    "swin_t": 28_288_354,
    "swin_s": 49_606_258,
    "swin_b": 87_768_224,
    "swin_v2_t": 28_351_570,
    "swin_v2_s": 49_737_442,
    "swin_v2_b": 87_930_848,
}

# torchvision's ShuffleNetV2 and MNASNet (torchvision.models.<name>(weights=None))
SHUFFLENET_PARAMETERS = {
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
}
MNASNET_PARAMETERS = {
    "mnasnet0_5": 2_218_512,
    "mnasnet0_75": 3_170_208,
    "mnasnet1_0": 4_383_312,
    "mnasnet1_3": 6_282_256,
}

# torchvision's AlexNet, VGG and SqueezeNet (torchvision.models.<name>(weights=None))
PLAIN_PARAMETERS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
}

SEGMENTATION_PARAMETERS = {  # torchvision's (weights=None, weights_backbone=None) and smp's (encoder_weights=None)
    "fcn_resnet50": 32_957_013,
    "fcn_resnet101": 51_949_141,
    "deeplabv3_resnet50": 39_638_869,
    "deeplabv3_resnet101": 58_630_997,
    "deeplabv3_mobilenet_v3_large": 11_025_477,
    "lraspp_mobilenet_v3_large": 3_221_538,
    "unet_resnet18": 14_328_209,
    "unet_resnet34": 24_436_369,
    "unet_resnet50": 32_521_105,
}


# --- comparing zoo models with their references -----------------------------------------------


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Random affine parameters and real, per-channel running statistics, so that a wrong
    mapping (a swapped norm, mean for var) changes the outputs, which still stay well scaled:
    the statistics are those of a batch through the model (momentum 1)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.copy_(torch.rand(norm.weight.shape, generator=generator) + 0.5)
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator) * 0.2)
            norm.momentum = 1.0  # the running statistics become those of the next batch
        model.train()
        model(torch.randn(2, 3, 64, 64, generator=generator))
        for norm in norms:
            norm.momentum = 0.1
            norm.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=generator)))
    model.eval()


def assert_same_outputs(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Classifier logits equal to 1e-5 relative. Everything up to the head is bitwise equal; the head
    is a 1x1 conv here and a Linear in the reference, which may sum in different orders, so an output
    near zero can differ by 1e-5 of the output's scale (deep networks reach tens) rather than of its own value."""
    assert ours.shape == (*theirs.shape, 1, 1)
    scale = max(1.0, theirs.abs().max().item())
    torch.testing.assert_close(ours.flatten(1), theirs, rtol=1e-5, atol=1e-5 * scale)
