"""tools/3dident/sensitivity.py: central differences of the renderer, in pixel units per raw latent unit."""
import math

import numpy as np
import pytest
import torch

from tests.test_threedident_main import import_tool

SLOPES = [3.0, 3.0, 3.0, math.pi / 2, math.pi / 2, math.pi / 2, math.pi / 2, 0.45, 0.45, 0.45]  # scene per raw


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


def test_sweep_row_i_varies_latent_i_alone_from_low_to_high():
    """A renderer that paints the scene's 10 values into pixel (0, 0..9): row i, column j of the picture holds
    the scene of raw latent i at the j-th value from -1 to 1 and the others at 0."""
    sensitivity = import_tool("sensitivity")
    centre = sensitivity.raw_to_scene(np.zeros((1, 10)))[0]

    def painter(scene, size):
        images = torch.zeros(len(scene), size, size, 3, dtype=torch.uint8)
        images[:, 0, :10, 0] = (scene * 20 + 128).round().to(torch.uint8)
        return images
    picture = sensitivity.sweeps(16, 3, painter)
    assert picture.shape == (160, 48, 3)
    for i in range(10):
        values = [(picture[16 * i, 16 * j:16 * j + 10, 0].astype(float) - 128) / 20 for j in range(3)]
        others = np.arange(10) != i
        for v in values:
            np.testing.assert_allclose(v[others], centre[others], atol=0.03)
        assert values[0][i] < values[1][i] < values[2][i]
        np.testing.assert_allclose(values[1][i], centre[i], atol=0.03)


def test_strip_is_written_as_a_png(tmp_path, capsys):
    from PIL import Image
    sensitivity = import_tool("sensitivity")
    sensitivity.main(["--n", "1", "--size", "8", "--columns", "2", "--strip", str(tmp_path / "s.png")])
    assert Image.open(tmp_path / "s.png").size == (16, 80)
    assert "wrote" in capsys.readouterr().out


def test_bad_flags_and_an_unwritable_strip_are_one_line_errors(tmp_path):
    sensitivity = import_tool("sensitivity")
    with pytest.raises(SystemExit, match=r"^error: --n, --size"):
        sensitivity.main(["--delta", "1.5"])
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match=r"^error: cannot write .*file/s.png"):
        sensitivity.main(["--n", "1", "--size", "8", "--strip", str(tmp_path / "file" / "s.png")])
