"""tools/3dident/image_stats.py: per-channel mean/std against numpy over all pixels, and the CLI."""
import importlib

import numpy as np
from PIL import Image

image_stats = importlib.import_module("tools.3dident.image_stats")


def test_channel_stats_match_numpy_over_all_pixels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, 9, 3), dtype=np.uint8) for h in (5, 11)]  # unequal sizes
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    mean, std = image_stats.channel_stats(sorted(tmp_path.iterdir()))
    flat = np.concatenate([p.reshape(-1, 3) for p in images]) / 255.0
    assert np.allclose(mean, flat.mean(0)) and np.allclose(std, flat.std(0))
    image_stats.main([str(tmp_path)])
    assert f"mean: ({flat.mean(0)[0]:.4f}" in capsys.readouterr().out
