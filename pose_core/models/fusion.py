"""Inference-only folding of eval-mode BatchNorm into the preceding (transposed) convolution.

Every conv / deconv of HRNet and HigherHRNet (official layout) is directly followed by a
BatchNorm2d, either as the next item of a Sequential or as the matching `conv{k}` / `bn{k}`
attribute pair of the stem and the residual blocks. Folding removes ~300 elementwise passes over
the feature maps; outputs change only by float rounding (about 1e-6 relative). The result no
longer has the official state_dict layout: fold after loading weights, for inference only.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _fold(conv: nn.Module, bn: nn.Module) -> nn.Module | None:
    if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d):
        return fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
    return None


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of `model` with each conv -> BN pair folded into one conv.

    The input model is not modified. Shapes and the forward signature are unchanged.
    """
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                fused = _fold(module._modules[first], module._modules[second])
                if fused is not None:
                    module._modules[first] = fused
                    module._modules[second] = nn.Identity()
        else:
            for name in list(module._modules):
                if not name.startswith("conv"):
                    continue
                bn_name = "bn" + name[len("conv"):]
                if bn_name in module._modules:
                    fused = _fold(module._modules[name], module._modules[bn_name])
                    if fused is not None:
                        module._modules[name] = fused
                        module._modules[bn_name] = nn.Identity()
    return folded
