"""tools/3dident/renderer.py: colours and rotations against oracles, every latent visibly changes
the image, batching does not change pixels."""
import colorsys
import importlib
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

renderer = importlib.import_module("tools.3dident.renderer")

BASE = torch.tensor([0.0, 0.0, 1.3, 0.3, -0.2, 0.5, -math.pi / 2, 0.1, 0.2, 0.6])
CHANGES = {0: 0.6, 1: 0.6, 2: 0.35, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.5, 7: 0.4, 8: 0.4, 9: 0.4}


def test_hsv_to_rgb_matches_colorsys():
    hues = torch.rand(50)
    rgb = renderer.hsv_to_rgb(hues, 0.7, 0.9)
    expected = torch.tensor([colorsys.hsv_to_rgb(h, 0.7, 0.9) for h in hues.tolist()])
    assert torch.allclose(rgb, expected, atol=1e-5)


def test_euler_to_matrix_matches_scipy():
    angles = torch.rand(20, 3, dtype=torch.float64) * 2 * math.pi - math.pi
    expected = Rotation.from_euler("ZYX", angles.flip(1).numpy()).as_matrix()  # Rz(γ)·Ry(β)·Rx(α)
    assert np.allclose(renderer.euler_to_matrix(angles).numpy(), expected, atol=1e-10)


def test_teapot_sdf_sign():
    inside = torch.tensor([[0.1, 0.1, 0.0], [0.0, 0.0, 0.42], [0.6, 0.0, 0.15]])
    outside = torch.tensor([[0.0, 0.0, 0.6], [0.0, 0.6, 0.0], [2.0, 2.0, 2.0]])
    assert (renderer.teapot_sdf(inside) < 0).all() and (renderer.teapot_sdf(outside) > 0).all()


@pytest.mark.parametrize("column", range(10))
def test_each_latent_visibly_changes_the_image(column):
    scenes = BASE.repeat(2, 1)
    scenes[1, column] += CHANGES[column]
    a, b = renderer.render(scenes, 48).float()
    changed = ((a - b).abs().amax(-1) > 8).float().mean()
    assert changed > 0.01, f"latent {column} changed only {changed:.4f} of the pixels"


def test_batched_render_equals_one_by_one():
    scenes = BASE.repeat(3, 1)
    scenes[:, 0] = torch.tensor([-0.5, 0.0, 0.5])
    scenes[:, 7] = torch.tensor([0.1, 0.5, 0.8])
    batch = renderer.render(scenes, 32)
    single = torch.cat([renderer.render(s[None], 32) for s in scenes])
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == torch.uint8
    assert (batch.int() - single.int()).abs().max() <= 1
