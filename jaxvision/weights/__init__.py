"""Importers of torchvision state dicts into Flax variables.

`from_torchvision`, `load_variables`, `save_variables` and `StateDictMismatchError` live in
`jaxvision.weights.torchvision`; they are imported lazily so that
`python -m jaxvision.weights.torchvision` runs the module once.
"""

import importlib

__all__ = ["StateDictMismatchError", "from_torchvision", "load_variables", "save_variables"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("jaxvision.weights.torchvision"), name)
    raise AttributeError(f"module 'jaxvision.weights' has no attribute {name!r}")
