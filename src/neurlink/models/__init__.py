"""The model zoo: torchvision's ResNet family and timm's HRNets written in the grammar, and a registry of builders.

>>> import neurlink
>>> neurlink.list_models("wide_*")
['wide_resnet101_2', 'wide_resnet50_2']
"""

from ._registry import create_model as create_model
from ._registry import list_models as list_models
from ._registry import register_model as register_model
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
