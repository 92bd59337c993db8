"""The grammar's vocabulary: ``import neurlink.nerves as nv``.

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build([((3, 1), nv.Input()), ((16, 2), nv.Conv2d_BN_ReLU(3)), ((16, 4), nv.MaxPool2d(3))])
>>> net(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 16, 8, 8])
"""

from ..lines import output as output
from ..nerve import Input as Input
from ..nerve import Nerve as Nerve
from ..network import Network as Network
from ..network import build as build
from ..shapes import Dims as Dims
from ..shapes import ShapeSpec as ShapeSpec
from ..shapes import tokens as tokens
from .attention import CrossAttention as CrossAttention
from .attention import SelfAttention as SelfAttention
from .channels import LayerNorm as LayerNorm
from .channels import LayerNorm2d as LayerNorm2d
from .channels import LayerScale as LayerScale
from .channels import PointwiseLinear as PointwiseLinear
from .channels import RMSNorm as RMSNorm
from .conv import Conv1d as Conv1d
from .conv import Conv1d_BN_ReLU as Conv1d_BN_ReLU
from .conv import Conv1d_ReLU as Conv1d_ReLU
from .conv import Conv1d_ReLU_BN as Conv1d_ReLU_BN
from .conv import Conv2d as Conv2d
from .conv import Conv2d_BN_ReLU as Conv2d_BN_ReLU
from .conv import Conv2d_ReLU as Conv2d_ReLU
from .conv import Conv2d_ReLU_BN as Conv2d_ReLU_BN
from .conv import Conv3d as Conv3d
from .conv import Conv3d_BN_ReLU as Conv3d_BN_ReLU
from .conv import Conv3d_ReLU as Conv3d_ReLU
from .conv import Conv3d_ReLU_BN as Conv3d_ReLU_BN
from .conv import ConvNd as ConvNd
from .conv import ConvTransposed1d as ConvTransposed1d
from .conv import ConvTransposed1d_BN_ReLU as ConvTransposed1d_BN_ReLU
from .conv import ConvTransposed1d_ReLU as ConvTransposed1d_ReLU
from .conv import ConvTransposed1d_ReLU_BN as ConvTransposed1d_ReLU_BN
from .conv import ConvTransposed2d as ConvTransposed2d
from .conv import ConvTransposed2d_BN_ReLU as ConvTransposed2d_BN_ReLU
from .conv import ConvTransposed2d_ReLU as ConvTransposed2d_ReLU
from .conv import ConvTransposed2d_ReLU_BN as ConvTransposed2d_ReLU_BN
from .conv import ConvTransposed3d as ConvTransposed3d
from .conv import ConvTransposed3d_BN_ReLU as ConvTransposed3d_BN_ReLU
from .conv import ConvTransposed3d_ReLU as ConvTransposed3d_ReLU
from .conv import ConvTransposed3d_ReLU_BN as ConvTransposed3d_ReLU_BN
from .drop import StochasticDepth as StochasticDepth
from .linear import Linear as Linear
from .merge import Add as Add
from .merge import Bundle as Bundle
from .merge import Concat as Concat
from .merge import SkipConnect1d as SkipConnect1d
from .merge import SkipConnect2d as SkipConnect2d
from .merge import SkipConnect3d as SkipConnect3d
from .norm import BatchNorm1d as BatchNorm1d
from .norm import BatchNorm1d_ReLU as BatchNorm1d_ReLU
from .norm import BatchNorm2d as BatchNorm2d
from .norm import BatchNorm2d_ReLU as BatchNorm2d_ReLU
from .norm import BatchNorm3d as BatchNorm3d
from .norm import BatchNorm3d_ReLU as BatchNorm3d_ReLU
from .norm import BatchNormNd as BatchNormNd
from .pixel import PixelShuffle as PixelShuffle
from .pixel import PixelUnshuffle as PixelUnshuffle
from .plain import Module as Module
from .pool import AvgPool1d as AvgPool1d
from .pool import AvgPool2d as AvgPool2d
from .pool import AvgPool3d as AvgPool3d
from .pool import MaxPool1d as MaxPool1d
from .pool import MaxPool2d as MaxPool2d
from .pool import MaxPool3d as MaxPool3d
from .resample import Identity as Identity
from .resample import Interpolate as Interpolate
from .sequence import ClassToken as ClassToken
from .sequence import Embedding as Embedding
from .sequence import PositionEmbedding as PositionEmbedding
from .sequence import SinCosPositionEmbedding as SinCosPositionEmbedding
from .sequence import ToMap as ToMap
from .sequence import ToTokens as ToTokens
from .sequence import ToVector as ToVector
from .shuffle import ChannelShuffle as ChannelShuffle
from .shuffle import ChannelSplit as ChannelSplit
from .squeeze_excite import SqueezeExcitation as SqueezeExcitation
from .transformer import MLP as MLP
from .transformer import TransformerBlock as TransformerBlock
from .window import PatchMerging as PatchMerging
from .window import SwinBlock as SwinBlock
from .window import WindowAttention as WindowAttention
