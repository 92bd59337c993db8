"""neurlink: a compact grammar for defining PyTorch networks.

>>> import torch, neurlink
>>> from neurlink import nv
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(7))])
>>> net(torch.zeros(1, 3, 15, 15)).shape
torch.Size([1, 8, 8, 8])
"""

from . import interop as interop
from . import models as models
from . import nerves as nerves
from . import nerves as nv  # noqa: F401 - the short name the grammar is written with
from . import nn as nn
from . import tools as tools
from ._version import __version__ as __version__
from .errors import CheckpointError as CheckpointError
from .errors import CheckpointNotFoundError as CheckpointNotFoundError
from .errors import DefinitionError as DefinitionError
from .errors import DimsError as DimsError
from .errors import ForwardError as ForwardError
from .errors import InputError as InputError
from .errors import LineIndexError as LineIndexError
from .errors import LineTagError as LineTagError
from .errors import LineTypeError as LineTypeError
from .errors import NerveArgumentError as NerveArgumentError
from .errors import NeurlinkError as NeurlinkError
from .errors import OutputError as OutputError
from .errors import PretrainedError as PretrainedError
from .errors import SelectorError as SelectorError
from .errors import SelectorIndexError as SelectorIndexError
from .errors import SelectorTypeError as SelectorTypeError
from .errors import StateDictError as StateDictError
from .errors import UnexpectedArgumentError as UnexpectedArgumentError
from .errors import UnknownModelError as UnknownModelError
from .errors import UnknownTagError as UnknownTagError
from .models import convnext_base as convnext_base
from .models import convnext_large as convnext_large
from .models import convnext_small as convnext_small
from .models import convnext_tiny as convnext_tiny
from .models import create_model as create_model
from .models import deeplabv3_mobilenet_v3_large as deeplabv3_mobilenet_v3_large
from .models import deeplabv3_resnet50 as deeplabv3_resnet50
from .models import deeplabv3_resnet101 as deeplabv3_resnet101
from .models import efficientnet_b0 as efficientnet_b0
from .models import efficientnet_b1 as efficientnet_b1
from .models import efficientnet_b2 as efficientnet_b2
from .models import efficientnet_b3 as efficientnet_b3
from .models import efficientnet_b4 as efficientnet_b4
from .models import efficientnet_b5 as efficientnet_b5
from .models import efficientnet_b6 as efficientnet_b6
from .models import efficientnet_b7 as efficientnet_b7
from .models import fcn_resnet50 as fcn_resnet50
from .models import fcn_resnet101 as fcn_resnet101
from .models import hrnet_w18 as hrnet_w18
from .models import hrnet_w18_small as hrnet_w18_small
from .models import hrnet_w18_small_v2 as hrnet_w18_small_v2
from .models import hrnet_w30 as hrnet_w30
from .models import hrnet_w32 as hrnet_w32
from .models import hrnet_w40 as hrnet_w40
from .models import hrnet_w44 as hrnet_w44
from .models import hrnet_w48 as hrnet_w48
from .models import hrnet_w64 as hrnet_w64
from .models import list_models as list_models
from .models import lraspp_mobilenet_v3_large as lraspp_mobilenet_v3_large
from .models import mobilenet_v2 as mobilenet_v2
from .models import mobilenet_v3_large as mobilenet_v3_large
from .models import mobilenet_v3_small as mobilenet_v3_small
from .models import resnet18 as resnet18
from .models import resnet34 as resnet34
from .models import resnet50 as resnet50
from .models import resnet101 as resnet101
from .models import resnet152 as resnet152
from .models import resnext50_32x4d as resnext50_32x4d
from .models import resnext101_32x8d as resnext101_32x8d
from .models import swin_b as swin_b
from .models import swin_s as swin_s
from .models import swin_t as swin_t
from .models import swin_v2_b as swin_v2_b
from .models import swin_v2_s as swin_v2_s
from .models import swin_v2_t as swin_v2_t
from .models import unet_resnet18 as unet_resnet18
from .models import unet_resnet34 as unet_resnet34
from .models import unet_resnet50 as unet_resnet50
from .models import vit_b_16 as vit_b_16
from .models import vit_b_32 as vit_b_32
from .models import vit_h_14 as vit_h_14
from .models import vit_l_16 as vit_l_16
from .models import vit_l_32 as vit_l_32
from .models import wide_resnet50_2 as wide_resnet50_2
from .models import wide_resnet101_2 as wide_resnet101_2
from .nerve import Input as Input
from .nerve import Nerve as Nerve
from .network import Network as Network
from .network import build as build
from .pretrained import from_pretrained as from_pretrained
from .tools import graph as graph
from .tools import summary as summary
