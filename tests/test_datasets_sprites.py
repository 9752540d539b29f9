"""datasets/sprites.py: areas of the rasterised shapes, rotations, anti-aliasing."""
import numpy as np
import pytest

from datasets.sprites import SHAPES, polygon_radius, regular_star, render_sprite


@pytest.mark.parametrize("shape, area", [("square", 2.0), ("circle", np.pi), ("ellipse", np.pi / 2),
                                         ("triangle", 3 * np.sqrt(3) / 4)])
def test_areas_match_the_unit_shapes(shape, area):
    """Half-size h covers area·h² pixels (within a few percent at h = 20)."""
    image = render_sprite(shape, 31.5, 31.5, 20, 0.3, supersample=4)
    assert image.sum() == pytest.approx(area * 400, rel=0.03)


def test_square_turned_a_quarter_is_the_same_and_star_tips_lie_on_the_unit_circle():
    np.testing.assert_array_equal(render_sprite("square", 31.5, 31.5, 15, 0.2),
                                  render_sprite("square", 31.5, 31.5, 15, 0.2 + np.pi / 2))
    angles, radii = regular_star(4, 0.4)
    assert polygon_radius(angles, radii, angles) == pytest.approx(radii)


def test_every_shape_is_binary_without_supersampling_and_grey_at_edges_with_it():
    for shape in SHAPES:
        binary = render_sprite(shape, 30, 33, 12, 1.0)
        assert set(np.unique(binary)) == {0.0, 1.0}
        grey = render_sprite(shape, 30, 33, 12, 1.0, supersample=3)
        assert ((grey > 0) & (grey < 1)).any() and abs(grey.sum() - binary.sum()) < 0.1 * binary.sum()
