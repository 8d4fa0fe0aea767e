"""jaxvision.xla_cpu_flags: which XLA:CPU flags `import jaxvision` adds, and that they take
effect (the convolution leaves YNNPACK for XLA's own kernels) in a fresh process."""

import os
import subprocess
import sys

import pytest

from jaxvision import xla_cpu_flags

FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def test_flags_to_add_defaults_and_keeps_user_settings():
    assert xla_cpu_flags.flags_to_add("", "0.10.2", None) == [FLAG]
    assert xla_cpu_flags.flags_to_add("--xla_force_host_platform_device_count=8", "0.10.0",
                                      "1") == [FLAG]
    # the user's own value of the flag wins, whatever it is
    assert xla_cpu_flags.flags_to_add(
        "--xla_cpu_experimental_ynn_fusion_type=individual_dot", "0.10.2", None) == []
    assert xla_cpu_flags.flags_to_add("", "0.10.2", "0") == []  # opt-out
    # an unknown flag aborts XLA: only jaxlib lines the flag was checked on get it
    assert xla_cpu_flags.flags_to_add("", "0.11.0", None) == []
    assert xla_cpu_flags.flags_to_add("", "0.9.2", None) == []


def test_apply_appends_once_and_not_after_the_backend_started(monkeypatch, caplog):
    from jax._src import xla_bridge

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: False)
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert xla_cpu_flags.apply(env) == [FLAG]
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=8 {FLAG}"
    assert xla_cpu_flags.apply(env) == []  # already there
    assert env["XLA_FLAGS"].count("ynn") == 1

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: True)
    env = {}
    assert xla_cpu_flags.apply(env) == []
    assert "XLA_FLAGS" not in env
    assert "not in effect" in caplog.text


_PROBE = """
import jaxvision, jax, jax.numpy as jnp
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
text = jax.jit(conv).lower(jnp.ones((2, 32, 32, 32)), jnp.ones((3, 3, 32, 32))).compile().as_text()
print('ynn' if '__ynn_fusion' in text else 'xla')
"""


@pytest.mark.parametrize("opt_out, expected", [(None, "xla"), ("0", "ynn")])
def test_import_jaxvision_moves_cpu_convolutions_off_ynnpack(opt_out, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu_flags.OPT_OUT)}
    env["JAX_PLATFORMS"] = "cpu"
    if opt_out is not None:
        env[xla_cpu_flags.OPT_OUT] = opt_out
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == expected
