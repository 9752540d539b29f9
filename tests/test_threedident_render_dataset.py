"""tools/3dident/render_dataset.py: zero-padded PNG names, the renderer's pixels, and a resumed run
that renders only the missing images."""
import importlib
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "3dident"
sys.path.insert(0, str(TOOLS))
render_dataset = importlib.import_module("render_dataset")
generate_latents = importlib.import_module("generate_latents")
renderer = importlib.import_module("renderer")
sys.path.remove(str(TOOLS))


def test_renders_missing_images_with_padded_names(tmp_path):
    generate_latents.main([str(tmp_path), "--n", "12", "--seed", "4"])
    assert render_dataset.render_folder(tmp_path, size=16, batch_size=5) == 12
    names = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert names == [f"{i:02d}.png" for i in range(12)]
    scene = torch.from_numpy(np.load(tmp_path / "latents.npy")[[7]])
    saved = np.asarray(Image.open(tmp_path / "images" / "07.png")).astype(int)
    assert np.abs(saved - renderer.render(scene, 16)[0].numpy()).max() <= 1  # batching may move a rounding
    (tmp_path / "images" / "03.png").unlink()
    assert render_dataset.render_folder(tmp_path, size=16) == 1 and (tmp_path / "images" / "03.png").is_file()
