"""Trace-time input checks: `ValueError`s naming the field, the expectation and the value."""

from __future__ import annotations


def check_last_dim(x, name: str, size: int = 4):
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) < 1 or shape[-1] != size:
        raise ValueError(f"{name}: expected shape [..., {size}], got shape {shape}")


def check_rank(x, name: str, rank: int, layout: str):
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != rank:
        raise ValueError(f"{name}: expected rank {rank} {layout}, got shape {shape}")


def check_choice(value, name: str, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")


def check_pair(value, name: str):
    """Returns `value` as a pair of positive ints (an int n means (n, n))."""
    if isinstance(value, int):
        value = (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}") from None
    if a <= 0 or b <= 0:
        raise ValueError(f"{name}: expected positive sizes, got {(a, b)}")
    return a, b
