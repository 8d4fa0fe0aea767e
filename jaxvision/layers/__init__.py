"""Small shared Flax blocks and input checks used by the models."""

from jaxvision.layers.conv_bn import ConvBN, batch_norm, conv_init, torch_padding
from jaxvision.layers.conv_transpose import ConvTranspose
from jaxvision.layers.cpu_conv import Conv, conv1x1_dot, strided_conv
from jaxvision.layers.depthwise import DepthwiseConv, depthwise_conv_shifted
from jaxvision.layers.max_pool import max_pool
from jaxvision.layers.mbconv import MBConv, make_divisible, stochastic_depth
from jaxvision.layers.pooling import adaptive_avg_pool, global_avg_pool
from jaxvision.layers.residual import BasicBlock, Bottleneck
from jaxvision.layers.squeeze_excite import SqueezeExcite
from jaxvision.layers.validation import check_images

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "Conv",
    "ConvBN",
    "ConvTranspose",
    "DepthwiseConv",
    "MBConv",
    "SqueezeExcite",
    "adaptive_avg_pool",
    "batch_norm",
    "check_images",
    "conv1x1_dot",
    "conv_init",
    "depthwise_conv_shifted",
    "global_avg_pool",
    "make_divisible",
    "max_pool",
    "stochastic_depth",
    "strided_conv",
    "torch_padding",
]
