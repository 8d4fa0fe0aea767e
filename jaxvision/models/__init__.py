"""Model registry: `get_model(name, **kwargs)` and `list_models()`.

The registry is an explicit table of `name -> "module:factory"`; modules are imported only when a
model is asked for, so nothing is registered by an import side effect.
"""

from __future__ import annotations

import importlib

import flax.linen as nn

_REGISTRY: dict[str, str] = {
    "alexnet": "alexnet:alexnet",
    **{f"vgg{d}": f"vgg:vgg{d}" for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": f"vgg:vgg{d}_bn" for d in (11, 13, 16, 19)},
    **{f"resnet{d}": f"resnet:resnet{d}" for d in (18, 34, 50, 101, 152)},
    **{f"efficientnet_b{i}": f"efficientnet:efficientnet_b{i}" for i in range(8)},
    "fcn32s": "fcn:fcn32s",
    "fcn16s": "fcn:fcn16s",
    "fcn8s": "fcn:fcn8s",
    "deconvnet": "deconvnet:deconvnet",
    "unet": "unet:UNet",
    "rcnn": "rcnn:rcnn",
    "fast_rcnn": "fast_rcnn:fast_rcnn",
    "faster_rcnn": "faster_rcnn:faster_rcnn",
    "mask_rcnn": "mask_rcnn:mask_rcnn",
    "ssd300": "ssd:ssd300",
    "yolov3": "yolo:yolov3",
}


def list_models(available_only: bool = True) -> list[str]:
    """Registered model names, sorted; only those whose module exists if `available_only`."""
    names = sorted(_REGISTRY)
    if not available_only:
        return names
    return [n for n in names if _module_exists(_REGISTRY[n].split(":")[0])]


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(f"jaxvision.models.{module}") is not None


def get_model(name: str, **kwargs) -> nn.Module:
    """Builds the Flax module registered as `name` with `kwargs` (e.g. num_classes, dtype)."""
    if name not in _REGISTRY:
        raise ValueError(f"model name: expected one of {sorted(_REGISTRY)}, got {name!r}")
    module, factory = _REGISTRY[name].split(":")
    if not _module_exists(module):
        raise NotImplementedError(f"model {name!r} is registered but not implemented yet")
    return getattr(importlib.import_module(f"jaxvision.models.{module}"), factory)(**kwargs)
