"""Importers of torchvision state dicts and Darknet files into Flax variables.

`from_torchvision`, `load_variables`, `save_variables` and `StateDictMismatchError` live in
`jaxvision.weights.torchvision`, `from_darknet` and `to_darknet` in `jaxvision.weights.darknet`;
they are imported lazily so that `python -m jaxvision.weights.torchvision` (or `.darknet`) runs
the module once.
"""

import importlib

_MODULE = {"StateDictMismatchError": "torchvision", "from_torchvision": "torchvision",
           "load_variables": "torchvision", "save_variables": "torchvision",
           "from_darknet": "darknet", "to_darknet": "darknet"}
__all__ = sorted(_MODULE)


def __getattr__(name):
    if name in _MODULE:
        return getattr(importlib.import_module(f"jaxvision.weights.{_MODULE[name]}"), name)
    raise AttributeError(f"module 'jaxvision.weights' has no attribute {name!r}")
