"""U-Net's elastic deformation: the bicubic displacement field against PyTorch's bicubic
(align_corners=True, float64), and the warp's invariants on a photograph: zero displacement is
the identity, a constant displacement a shift, labels stay labels."""

import numpy as np
import pytest
import skimage.data

from jaxvision.data.elastic import elastic_deform, elastic_field, upsample_bicubic, warp


def _torch_bicubic(coarse, height, width):
    import torch

    import tests.conftest  # noqa: F401

    grid = torch.from_numpy(np.asarray(coarse, np.float64))[None]
    return torch.nn.functional.interpolate(grid, size=(height, width), mode="bicubic",
                                           align_corners=True)[0].numpy()


def test_field_is_torch_bicubic_of_the_lattice_draws():
    height, width = 37, 50
    field = elastic_field(np.random.default_rng(3), height, width, sigma=10.0)  # grid 3
    lattice = np.random.default_rng(3).normal(0.0, 10.0, (2, 3, 3))  # the same draws
    np.testing.assert_allclose(field, _torch_bicubic(lattice, height, width), atol=1e-10)
    # the lattice sits on the corners and the centre pixel: the draws themselves
    np.testing.assert_allclose(field[:, ::height - 1, ::width - 1], lattice[:, ::2, ::2],
                               atol=1e-12)
    np.testing.assert_allclose(field[:, 18, 0], lattice[:, 1, 0], atol=1e-12)


@pytest.mark.parametrize("grid,size", [(2, (5, 9)), (5, (64, 33))])
def test_upsampling_matches_torch_for_other_lattices(grid, size):
    coarse = np.random.default_rng(grid).normal(size=(2, grid, grid))
    np.testing.assert_allclose(upsample_bicubic(coarse, *size), _torch_bicubic(coarse, *size),
                               atol=1e-10)


def test_grid_below_two_points_is_an_error():
    elastic_field(np.random.default_rng(0), 8, 8, sigma=1.0, grid=2)  # the smallest lattice
    with pytest.raises(ValueError, match="data.elastic.grid: expected at least 2.*got 1"):
        elastic_field(np.random.default_rng(0), 8, 8, sigma=1.0, grid=1)


def test_zero_displacement_is_the_identity():
    image = skimage.data.coffee()[:60, :80]
    zero = np.zeros((2, 60, 80))
    np.testing.assert_array_equal(warp(image, zero, order=1), image)
    floats = image.astype(np.float32) / 7
    np.testing.assert_allclose(warp(floats, zero, order=1), floats, atol=1e-6)


def test_constant_displacement_is_a_shift():
    image = skimage.data.coins()[:50, :70].astype(np.float64)
    field = np.stack([np.full((50, 70), 3.0), np.full((50, 70), -5.0)])  # out(y, x) = in(y+3, x-5)
    out = warp(image, field, order=1)
    np.testing.assert_allclose(out[:47, 5:], image[3:, :65], atol=1e-9)
    # beyond the border the image is mirrored with its edge repeated (numpy 'symmetric')
    np.testing.assert_allclose(out, np.pad(image, ((0, 3), (5, 0)), mode="symmetric")[3:, :70],
                               atol=1e-9)


def test_labels_move_with_the_image_and_stay_labels():
    image = skimage.data.coins()[:64, :64]
    labels = (image > 100).astype(np.uint8)
    field = elastic_field(np.random.default_rng(0), 64, 64, sigma=10.0)
    out = elastic_deform({"image": image, "segmentation": labels}, field)
    assert out["segmentation"].dtype == np.uint8 and set(np.unique(out["segmentation"])) <= {0, 1}
    assert not np.array_equal(out["image"], image)
    # nearest resampling: every label is the source label at the rounded displaced position
    yy, xx = np.mgrid[:64, :64]
    src_y = np.clip(np.rint(yy + field[0]), 0, 63).astype(int)
    src_x = np.clip(np.rint(xx + field[1]), 0, 63).astype(int)
    inside = ((yy + field[0] >= 0) & (yy + field[0] <= 63) & (xx + field[1] >= 0)
              & (xx + field[1] <= 63))
    np.testing.assert_array_equal(out["segmentation"][inside], labels[src_y, src_x][inside])
