"""tools/3dident/sensitivity.py: central differences of the renderer, in pixel units per raw latent unit."""
import math

import numpy as np
import torch

from tests.test_threedident_main import import_tool

SLOPES = [0.9, 0.9, 0.4, math.pi / 2, math.pi / 2, math.pi / 2, 0.75 * math.pi, 0.45, 0.45, 0.45]  # scene per raw


def test_a_linear_renderer_gives_its_column_norms_times_the_scene_slopes():
    """x = 255·A·scene: the rate along raw latent i is RMS(A[:, i]) · d scene_i / d raw_i (generate_latents.py)."""
    sensitivity = import_tool("sensitivity")
    size = 4
    A = torch.randn(size * size * 3, 10, dtype=torch.float64)
    renderer = lambda scene, s: 255 * (scene.double() @ A.T).reshape(len(scene), s, s, 3)  # noqa: E731
    raw = np.random.default_rng(0).uniform(-0.9, 0.9, (5, 10))
    rates = sensitivity.sensitivity(raw, size, 0.05, renderer)
    expected = A.square().mean(0).sqrt().numpy() * np.array(SLOPES)
    np.testing.assert_allclose(rates, np.repeat(expected[:, None], 5, 1), rtol=1e-5)


def test_every_latent_moves_the_rendered_image(capsys):
    sensitivity = import_tool("sensitivity")
    sensitivity.main(["--n", "3", "--size", "16"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("RMS pixel change") and len(lines) == 11
    assert all(float(line.split()[-2]) > 0 for line in lines[1:])
