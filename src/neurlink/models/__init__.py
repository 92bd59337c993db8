"""The model zoo: torchvision's ResNet, MobileNet, EfficientNet, ConvNeXt and RegNet families and timm's
HRNets written in the grammar, torchvision's segmentation models and smp's U-Nets, and a registry of builders.

>>> import neurlink
>>> neurlink.list_models("wide_*")
['wide_resnet101_2', 'wide_resnet50_2']
"""

from .. import _registry as _registry  # the registry is the core's: checkpoints read it without importing the zoo
from .._registry import create_model as create_model
from .._registry import list_models as list_models
from .._registry import register_model as register_model
from .convnext import ConvNeXtBlock as ConvNeXtBlock
from .convnext import convnext_base as convnext_base
from .convnext import convnext_large as convnext_large
from .convnext import convnext_small as convnext_small
from .convnext import convnext_tiny as convnext_tiny
from .efficientnet import MBConv as MBConv
from .efficientnet import efficientnet_b0 as efficientnet_b0
from .efficientnet import efficientnet_b1 as efficientnet_b1
from .efficientnet import efficientnet_b2 as efficientnet_b2
from .efficientnet import efficientnet_b3 as efficientnet_b3
from .efficientnet import efficientnet_b4 as efficientnet_b4
from .efficientnet import efficientnet_b5 as efficientnet_b5
from .efficientnet import efficientnet_b6 as efficientnet_b6
from .efficientnet import efficientnet_b7 as efficientnet_b7
from .hrnet import HRModule as HRModule
from .hrnet import HRTransition as HRTransition
from .hrnet import hrnet_w18 as hrnet_w18
from .hrnet import hrnet_w18_small as hrnet_w18_small
from .hrnet import hrnet_w18_small_v2 as hrnet_w18_small_v2
from .hrnet import hrnet_w30 as hrnet_w30
from .hrnet import hrnet_w32 as hrnet_w32
from .hrnet import hrnet_w40 as hrnet_w40
from .hrnet import hrnet_w44 as hrnet_w44
from .hrnet import hrnet_w48 as hrnet_w48
from .hrnet import hrnet_w64 as hrnet_w64
from .mobilenet import InvertedResidual as InvertedResidual
from .mobilenet import make_divisible as make_divisible
from .mobilenet import mobilenet_v2 as mobilenet_v2
from .mobilenet import mobilenet_v3_large as mobilenet_v3_large
from .mobilenet import mobilenet_v3_small as mobilenet_v3_small
from .regnet import ResBottleneckBlock as ResBottleneckBlock
from .regnet import regnet_x_1_6gf as regnet_x_1_6gf
from .regnet import regnet_x_3_2gf as regnet_x_3_2gf
from .regnet import regnet_x_8gf as regnet_x_8gf
from .regnet import regnet_x_16gf as regnet_x_16gf
from .regnet import regnet_x_32gf as regnet_x_32gf
from .regnet import regnet_x_400mf as regnet_x_400mf
from .regnet import regnet_x_800mf as regnet_x_800mf
from .regnet import regnet_y_1_6gf as regnet_y_1_6gf
from .regnet import regnet_y_3_2gf as regnet_y_3_2gf
from .regnet import regnet_y_8gf as regnet_y_8gf
from .regnet import regnet_y_16gf as regnet_y_16gf
from .regnet import regnet_y_32gf as regnet_y_32gf
from .regnet import regnet_y_128gf as regnet_y_128gf
from .regnet import regnet_y_400mf as regnet_y_400mf
from .regnet import regnet_y_800mf as regnet_y_800mf
from .resnet import BasicBlock as BasicBlock
from .resnet import BottleNeck as BottleNeck
from .resnet import Bottleneck as Bottleneck
from .resnet import resnet18 as resnet18
from .resnet import resnet34 as resnet34
from .resnet import resnet50 as resnet50
from .resnet import resnet101 as resnet101
from .resnet import resnet152 as resnet152
from .resnet import resnext50_32x4d as resnext50_32x4d
from .resnet import resnext101_32x8d as resnext101_32x8d
from .resnet import wide_resnet50_2 as wide_resnet50_2
from .resnet import wide_resnet101_2 as wide_resnet101_2
from .segmentation import ASPP as ASPP
from .segmentation import DeepLabHead as DeepLabHead
from .segmentation import FCNHead as FCNHead
from .segmentation import LRASPPHead as LRASPPHead
from .segmentation import deeplabv3_mobilenet_v3_large as deeplabv3_mobilenet_v3_large
from .segmentation import deeplabv3_resnet50 as deeplabv3_resnet50
from .segmentation import deeplabv3_resnet101 as deeplabv3_resnet101
from .segmentation import fcn_resnet50 as fcn_resnet50
from .segmentation import fcn_resnet101 as fcn_resnet101
from .segmentation import lraspp_mobilenet_v3_large as lraspp_mobilenet_v3_large
from .swin import swin_b as swin_b
from .swin import swin_s as swin_s
from .swin import swin_t as swin_t
from .swin import swin_v2_b as swin_v2_b
from .swin import swin_v2_s as swin_v2_s
from .swin import swin_v2_t as swin_v2_t
from .unet import UnetDecoderBlock as UnetDecoderBlock
from .unet import unet_resnet18 as unet_resnet18
from .unet import unet_resnet34 as unet_resnet34
from .unet import unet_resnet50 as unet_resnet50
from .vit import vit_b_16 as vit_b_16
from .vit import vit_b_32 as vit_b_32
from .vit import vit_h_14 as vit_h_14
from .vit import vit_l_16 as vit_l_16
from .vit import vit_l_32 as vit_l_32
