import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (conftest defines the schemas it needs)
from torchvision.ops.roi_align import _roi_align

from jaxvision.ops import fpn_level, multiscale_roi_align, roi_align, roi_pool
from jaxvision.ops.roi import _ADAPTIVE_ROWS, _box_geometry, _pool_bin_bounds, _window_taps
from tests.ops.reference import roi_align_ref, roi_pool_ref, roi_pool_ref_f32

H, W, C = 9, 11, 3


def _features(seed=0, b=2):
    return np.random.default_rng(seed).normal(size=(b, H, W, C)).astype(np.float32)


def _adversarial_boxes():
    return np.array([
        [1.0, 1.0, 6.0, 5.0],       # inside
        [0.3, 2.2, 10.4, 8.7],      # large, fractional
        [-4.0, -3.0, 3.0, 4.0],     # partly outside top-left; aligned, adaptive, 2x3: a sample
                                    # at x = -1.00000012f (float32: 0, float64 / x * (1/3): kept)
        [7.0, 5.0, 16.0, 13.0],     # partly outside bottom-right
        [-9.0, -8.0, -3.0, -2.0],   # wholly outside
        [20.0, 1.0, 25.0, 4.0],     # wholly outside right
        [4.0, 2.0, 4.0, 7.0],       # zero width
        [3.0, 3.0, 3.0, 3.0],       # zero size
        [5.2, 4.1, 5.6, 4.4],       # sub-pixel
        [6.0, 6.0, 2.0, 3.0],       # inverted
        [-0.9, -0.9, 11.9, 9.9],    # samples in (-1, 0) and (W-1, W]
    ], np.float32)


IMPLS = ["gather", "matmul"]


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize(("sampling_ratio", "output_size"),
                         [(-1, (2, 3)), (0, (4, 4)), (2, (2, 3)), (5, (4, 4))])
def test_roi_align_matches_kernel_rules(aligned, sampling_ratio, output_size, impl):
    f = _features()
    boxes = _adversarial_boxes()
    idx = np.arange(len(boxes)) % 2
    got = roi_align(f, boxes, idx, output_size, 1.0, sampling_ratio, aligned, impl=impl)
    want = roi_align_ref(f, boxes, idx, output_size, 1.0, sampling_ratio, aligned,
                         dtype=np.float32)
    chex.assert_shape(got, (len(boxes), *output_size, C))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_roi_align_spatial_scale_and_large_adaptive_grid(impl):
    f = _features(1, b=1)
    rng = np.random.default_rng(3)
    xy = rng.uniform(-20, 60, size=(12, 2))
    wh = rng.uniform(0, 70, size=(12, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    idx = np.zeros(12, np.int32)
    for aligned in (False, True):
        got = roi_align(f, boxes, idx, (3, 2), 0.25, -1, aligned, impl=impl)
        want = roi_align_ref(f, boxes, idx, (3, 2), 0.25, -1, aligned, dtype=np.float32)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_roi_align_adaptive_gather_window_threshold():
    # adaptive grid, one bin: samples at 0.5, 1.5, .. (n - 0.5) for a box [0, n] touch rows
    # 0 .. n: n + 1 rows. The window holds _ADAPTIVE_ROWS rows; one more falls back to 'matmul'
    hh, ww = 3 * _ADAPTIVE_ROWS, 3 * _ADAPTIVE_ROWS
    f = np.random.default_rng(5).normal(size=(1, hh, ww, 2)).astype(np.float32)
    n = _ADAPTIVE_ROWS - 1
    taps = jax.jit(_window_taps, static_argnums=(3, 4))
    for extra, fits in [(0, True), (1, False)]:
        boxes = np.array([[1.0, 2.0, 1.0 + n + extra, 2.0 + n]], np.float32)
        ygeo, xgeo = _box_geometry(jnp.asarray(boxes), (1, 1), 1.0, -1, False, jnp.float32)
        assert bool(taps(*ygeo, 1, hh)[2])
        assert bool(taps(*xgeo, 1, ww)[2]) == fits
        want = roi_align_ref(f, boxes, [0], (1, 1), 1.0, -1, dtype=np.float32)
        for impl in IMPLS:
            got = roi_align(f, boxes, np.zeros(1, np.int32), (1, 1), 1.0, -1, impl=impl)
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_nan_box_and_bad_batch_index_give_zero(sampling_ratio):
    # NaN coordinates fail the kernel's in-range test: no contribution; a batch index outside
    # [0, B) pools nothing (the gather form must not read or scatter outside the map)
    f = _features(6)
    boxes = np.array([[1.0, 1.0, 6.0, 5.0], [np.nan, 1.0, 6.0, 5.0], [1.0, 1.0, 6.0, np.nan],
                      [2.0, 1.0, 8.0, 7.0], [2.0, 1.0, 8.0, 7.0]], np.float32)
    idx = np.array([0, 1, 0, 2, -1], np.int32)
    cot = np.random.default_rng(1).normal(size=(5, 2, 2, C)).astype(np.float32)
    want = roi_align_ref(f, boxes[:3], idx[:3], (2, 2), 1.0, sampling_ratio, dtype=np.float32)
    grads = []
    for impl in IMPLS:
        out, vjp = jax.vjp(lambda x, impl=impl: roi_align(
            x, boxes, idx, (2, 2), 1.0, sampling_ratio, impl=impl), jnp.asarray(f))
        np.testing.assert_allclose(np.asarray(out[:3]), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(out[1:]), 0)
        grads.append(np.asarray(vjp(jnp.asarray(cot))[0]))
    # only the first box sends gradient
    g0 = jax.grad(lambda x: jnp.sum(roi_align(x, boxes[:1], idx[:1], (2, 2), 1.0,
                                              sampling_ratio, impl="matmul") * cot[:1]))(f)
    for g in grads:
        np.testing.assert_allclose(g, np.asarray(g0), rtol=1e-5, atol=1e-6)


def _inside_boxes(rng, n, scale=1.0):
    x1 = rng.uniform(0, W - 3, n)
    y1 = rng.uniform(0, H - 3, n)
    x2 = x1 + rng.uniform(0.5, W - 1 - x1)
    y2 = y1 + rng.uniform(0.5, H - 1 - y1)
    return (np.stack([x1, y1, x2, y2], 1) / scale).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_matches_torchvision_values_and_grads(aligned, sampling_ratio):
    rng = np.random.default_rng(7)
    f = _features(2)
    boxes = _inside_boxes(rng, 10, scale=0.5)
    idx = rng.integers(0, 2, 10).astype(np.int32)
    out_size = (3, 4)
    cot = rng.normal(size=(10, *out_size, C)).astype(np.float32)

    ft = torch.tensor(f.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(np.concatenate([idx[:, None], boxes], 1), dtype=torch.float64)
    # _roi_align only agrees with the kernels for in-map samples; these boxes are inside
    ot = _roi_align(ft, rois, 0.5, out_size[0], out_size[1], sampling_ratio, aligned)
    lt = (ot * torch.tensor(cot.transpose(0, 3, 1, 2), dtype=torch.float64)).sum()
    lt.backward()
    for impl in IMPLS:
        def jx(feat, impl=impl):
            out = roi_align(feat, boxes, idx, out_size, 0.5, sampling_ratio, aligned, impl=impl)
            return jnp.sum(out * cot), out

        (val, out), grad = jax.value_and_grad(jx, has_aux=True)(jnp.asarray(f))
        np.testing.assert_allclose(np.asarray(out), ot.detach().numpy().transpose(0, 2, 3, 1),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(float(val), lt.item(), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(grad), ft.grad.numpy().transpose(0, 2, 3, 1),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_grad_is_adjoint_of_reference_on_adversarial_boxes(impl, sampling_ratio):
    # the kernel's backward scatters each sample's bilinear weights: d out / d feature is the
    # linear map of the reference, recovered here by probing it with unit feature maps
    boxes = _adversarial_boxes()[:6]
    idx = np.zeros(len(boxes), np.int32)
    cot = np.random.default_rng(0).normal(size=(len(boxes), 2, 2, 1))
    grad = jax.grad(lambda f: jnp.sum(
        roi_align(f, boxes, idx, (2, 2), 1.0, sampling_ratio, impl=impl) * cot))(
        jnp.zeros((1, 5, 6, 1), jnp.float32))
    want = np.zeros((1, 5, 6, 1))
    for r in range(5):
        for c in range(6):
            e = np.zeros((1, 5, 6, 1))
            e[0, r, c, 0] = 1
            want[0, r, c, 0] = np.sum(roi_align_ref(e, boxes, idx, (2, 2), 1.0, sampling_ratio,
                                                    dtype=np.float32)
                                      * cot)
    np.testing.assert_allclose(np.asarray(grad), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_roi_align_box_gradient_is_zero_like_torchvision(impl):
    f = jnp.asarray(_features())
    g = jax.grad(lambda b: jnp.sum(roi_align(f, b, jnp.zeros(2, jnp.int32), 2, impl=impl)))(
        jnp.array([[1.0, 1, 5, 5], [2, 2, 7, 6]]))
    np.testing.assert_array_equal(np.asarray(g), 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_roi_align_jits_once(impl):
    f = jnp.asarray(_features())
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(f, b, i):
        return roi_align(f, b, i, (2, 2), sampling_ratio=-1, impl=impl)

    rng = np.random.default_rng(0)
    for _ in range(3):
        run(f, jnp.asarray(_inside_boxes(rng, 5)), jnp.zeros(5, jnp.int32))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_pool_matches_kernel_rules(scale):
    f = _features(4)
    boxes = np.concatenate([_adversarial_boxes(), np.array([[2.5, 1.5, 9.5, 3.5]], np.float32)])
    boxes = boxes / scale
    idx = np.arange(len(boxes)) % 2
    for out in [(2, 3), (3, 3)]:
        got = roi_pool(f, boxes, idx, out, scale)
        want = roi_pool_ref(f, boxes, idx, out, scale)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)


# boxes on which XLA's x / out -> x * (1 / out) rewrite made the last bin one cell longer than
# the kernel's float32 division (found by random search against roi_pool_ref_f32), and
# std::round's halves-away rule at the float32 just below 0.5 (floor(x + 0.5) rounds it up)
_POOL_PINNED = np.array([
    [-2.0711966, 5.9758816, 3.7013719, 10.867534],
    [6.5454211, -0.6037764, 9.2022152, 4.6365881],
    [-1.1978959, 3.2780907, 5.0048442, 11.538409],
    [-2.188293, -0.054472092, 3.7468629, 8.1029015],
    [2.5663166, 3.2924328, 9.2355728, 4.9687586],
    [0.49999997, 0.49999997, 6.0, 6.0],         # std::round(0.49999997f) == 0
    [0.0, 0.0, 6.0, 6.0],                       # 7 cells in 3 bins: 2.3333333f * 3 == 7
], np.float32)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_pool_matches_float32_kernel(scale):
    f = _features(4)
    rng = np.random.default_rng(11)
    xy = rng.uniform(-3, 12, size=(60, 2))
    wh = rng.uniform(0, 12, size=(60, 2))
    boxes = np.concatenate([_POOL_PINNED, np.concatenate([xy, xy + wh], 1)]).astype(np.float32)
    boxes = (boxes / scale).astype(np.float32)
    idx = np.arange(len(boxes)) % 2
    for out in [(3, 3), (2, 3)]:
        got = roi_pool(f, boxes, idx, out, scale)
        want = roi_pool_ref_f32(f, boxes, idx, out, scale)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_roi_pool_bin_bounds_equal_float32_for_every_size():
    # exhaustive over roi sizes 1..3000 and 1..14 bins against numpy's IEEE float32 arithmetic
    size = np.arange(1, 3001, dtype=np.int32)
    bounds = jax.jit(_pool_bin_bounds, static_argnums=1)
    for out in range(1, 15):
        lo, hi = bounds(jnp.asarray(size), out)
        bs = size.astype(np.float32) / np.float32(out)
        p = np.arange(out, dtype=np.float32)[None]
        np.testing.assert_array_equal(np.asarray(lo), np.floor(p * bs[:, None]).astype(int))
        np.testing.assert_array_equal(np.asarray(hi), np.ceil((p + 1) * bs[:, None]).astype(int))


def test_roi_pool_grad_routes_to_argmax():
    f = _features(5, b=1)
    boxes = np.array([[1.0, 1.0, 7.0, 6.0]], np.float32)
    g = jax.grad(lambda x: jnp.sum(roi_pool(x, boxes, np.zeros(1, np.int32), (2, 2))))(
        jnp.asarray(f))
    # each output bin sends gradient 1 to its max location (per channel), bins may share one
    want = np.zeros_like(f, np.float64)
    rh, rw = 6, 7
    for ph in range(2):
        for pw in range(2):
            hs, he = 1 + (ph * rh) // 2, 1 + -(-(ph + 1) * rh // 2)
            ws, we = 1 + (pw * rw) // 2, 1 + -(-(pw + 1) * rw // 2)
            for c in range(C):
                win = f[0, hs:he, ws:we, c]
                r, q = np.unravel_index(np.argmax(win), win.shape)
                want[0, hs + r, ws + q, c] += 1
    np.testing.assert_allclose(np.asarray(g), want)


@pytest.mark.slow
def test_fpn_level_and_multiscale():
    sampling_ratio = 2
    boxes = np.array([[0, 0, 56, 56], [0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 2000, 2000.0],
                      [0, 0, 10, 10]], np.float32)
    want = [np.clip(np.floor(4 + np.log2(np.sqrt((b[2] - b[0]) * (b[3] - b[1])) / 224) + 1e-6),
                    2, 5) for b in boxes]
    np.testing.assert_array_equal(np.asarray(fpn_level(boxes)), want)
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=(2, 64 // s, 64 // s, 2)).astype(np.float32) for s in (4, 8, 16, 32)]
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    boxes = boxes / 10
    bidx = np.array([0, 1, 1, 0, 1], np.int32)
    lv = np.asarray(fpn_level(boxes, 2, 5, 22.4))
    cot = rng.normal(size=(5, 2, 2, 2)).astype(np.float32)
    grads = {}
    for impl in IMPLS:
        def loss(ms, impl=impl):
            out = multiscale_roi_align(ms, boxes, bidx, 2, scales, sampling_ratio,
                                       canonical_scale=22.4, impl=impl)
            return jnp.sum(out * cot), out

        (_, got), grads[impl] = jax.value_and_grad(loss, has_aux=True)(
            [jnp.asarray(m) for m in maps])
        for k in range(5):
            want = roi_align_ref(maps[lv[k] - 2], boxes[k:k + 1], bidx[k:k + 1], (2, 2),
                                 scales[lv[k] - 2], sampling_ratio, dtype=np.float32)
            np.testing.assert_allclose(np.asarray(got[k:k + 1]), want, rtol=1e-5, atol=1e-5)
    # the per-level gather (one tap table) and the matmul form's per-level select: same grads
    for gg, gm in zip(grads["gather"], grads["matmul"], strict=True):
        np.testing.assert_allclose(np.asarray(gg), np.asarray(gm), rtol=1e-5, atol=1e-6)


def test_roi_errors_name_the_field():
    f = jnp.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="features"):
        roi_align(jnp.zeros((4, 4, 1)), jnp.zeros((1, 4)), jnp.zeros(1, jnp.int32), 2)
    with pytest.raises(ValueError, match="box_indices"):
        roi_align(f, jnp.zeros((2, 4)), jnp.zeros(3, jnp.int32), 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_pool(f, jnp.zeros((1, 4)), jnp.zeros(1, jnp.int32), (0, 2))
    with pytest.raises(ValueError, match="boxes"):
        roi_pool(f, jnp.zeros((1, 5)), jnp.zeros(1, jnp.int32), 2)
    with pytest.raises(ValueError, match="impl: expected one of .*'fast'"):
        roi_align(f, jnp.zeros((1, 4)), jnp.zeros(1, jnp.int32), 2, impl="fast")
    with pytest.raises(ValueError, match="impl"):
        multiscale_roi_align([f], jnp.zeros((1, 4)), jnp.zeros(1, jnp.int32), 2, [1.0],
                             impl="fast")
