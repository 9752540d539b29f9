"""tools/3dident/render_dataset.py: zero-padded PNG names, the renderer's pixels, and a resumed run
that renders only the missing and the damaged (truncated, wrong size) images."""
import importlib
import io
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


def test_rerenders_truncated_and_wrong_size_images_only(tmp_path, capsys):
    generate_latents.main([str(tmp_path), "--n", "6", "--seed", "2"])
    assert render_dataset.render_folder(tmp_path, size=16) == 6
    images = tmp_path / "images"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in images.iterdir()}
    truncated, resized = images / "2.png", images / "4.png"
    truncated.write_bytes(before["2.png"][0][:len(before["2.png"][0]) // 2])
    Image.open(resized).resize((8, 8)).save(resized)
    assert not render_dataset.image_ok(truncated, 16) and not render_dataset.image_ok(resized, 16)
    capsys.readouterr()
    assert render_dataset.render_folder(tmp_path, size=16) == 2
    assert "re-rendering 2 damaged images" in capsys.readouterr().out
    for path in (truncated, resized):
        assert render_dataset.image_ok(path, 16)
        original = np.asarray(Image.open(io.BytesIO(before[path.name][0]))).astype(int)
        assert np.abs(np.asarray(Image.open(path)).astype(int) - original).max() <= 1
    for name, (data, mtime) in before.items():
        if name not in (truncated.name, resized.name):
            assert (images / name).read_bytes() == data and (images / name).stat().st_mtime_ns == mtime
    assert render_dataset.render_folder(tmp_path, size=16) == 0
    assert render_dataset.render_folder(tmp_path, size=8) == 6  # another --size: every image is re-rendered


def test_new_latents_make_every_image_stale(tmp_path, capsys):
    """A folder reused with other latents (another --seed, another --n) is rendered again, not kept."""
    generate_latents.main([str(tmp_path), "--n", "12", "--seed", "4"])
    assert render_dataset.render_folder(tmp_path, size=16) == 12
    generate_latents.main([str(tmp_path), "--n", "12", "--seed", "5"])
    capsys.readouterr()
    assert render_dataset.render_folder(tmp_path, size=16) == 12
    assert "removing 12 images rendered from other latents" in capsys.readouterr().out
    scene = torch.from_numpy(np.load(tmp_path / "latents.npy")[[3]])
    saved = np.asarray(Image.open(tmp_path / "images" / "03.png")).astype(int)
    assert np.abs(saved - renderer.render(scene, 16)[0].numpy()).max() <= 1
    generate_latents.main([str(tmp_path), "--n", "9", "--seed", "5"])  # one digit: names 0.png … 8.png
    assert render_dataset.render_folder(tmp_path, size=16) == 9
    assert sorted(p.name for p in (tmp_path / "images").glob("*.png")) == [f"{i}.png" for i in range(9)]
    assert render_dataset.render_folder(tmp_path, size=16) == 0


def test_unstamped_folder_keeps_its_images_and_drops_unnamed_ones(tmp_path):
    """A folder rendered before the stamp existed: its images are trusted, PNGs named for no index go."""
    generate_latents.main([str(tmp_path), "--n", "5", "--seed", "1"])
    assert render_dataset.render_folder(tmp_path, size=16) == 5
    (tmp_path / render_dataset.STAMP).unlink()
    Image.new("RGB", (16, 16)).save(tmp_path / "images" / "7.png")
    assert render_dataset.render_folder(tmp_path, size=16) == 0
    assert sorted(p.name for p in (tmp_path / "images").glob("*.png")) == [f"{i}.png" for i in range(5)]


def test_masks_are_the_objects_coverage_and_are_added_without_touching_the_images(tmp_path, monkeypatch):
    """--masks writes masks/<index>.png (the share of each pixel the object covers, × 255); asked for on a folder
    rendered without them, it writes only the masks (here from two rendering processes, which import this
    script by name as its own run does)."""
    generate_latents.main([str(tmp_path), "--n", "4", "--seed", "3"])
    assert render_dataset.render_folder(tmp_path, size=24) == 4
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "images").iterdir()}
    monkeypatch.syspath_prepend(str(TOOLS))
    render_dataset.main([str(tmp_path), "--size", "24", "--masks", "--processes", "2"])
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "images").iterdir()} == before
    scene = torch.from_numpy(np.load(tmp_path / "latents.npy")[[2]])
    _, coverage = renderer.render_with_masks(scene, 24)
    mask = np.asarray(Image.open(tmp_path / "masks" / "2.png"))
    assert mask.shape == (24, 24) and mask.dtype == np.uint8
    assert np.abs(mask.astype(int) - np.round(coverage[0].numpy() * 255)).max() <= 1
    assert 0 < (mask == 255).sum() < mask.size / 4 and (mask == 0).sum() > mask.size / 2
    assert render_dataset.render_folder(tmp_path, size=24, masks=True) == 0
