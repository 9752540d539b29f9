"""tools/3dident/compare_reference.py: on a folder our own renderer writes in the reference layout, every ratio is 1
and every silhouette matches; a folder rendered with a shifted camera fails; the measures against brute force."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "3dident"
sys.path.insert(0, str(TOOLS))
compare = importlib.import_module("compare_reference")
renderer = importlib.import_module("renderer")
generate_latents = importlib.import_module("generate_latents")
sys.path.remove(str(TOOLS))
from datasets.threedident_dataset import image_name  # noqa: E402

SIZE = 32


def sweeps_and_random(n_random: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The reference's layout at a small size: one base point, each latent swept over three values, then random
    scenes. Returns raw latents (30 + n_random, 10) and the sweep index (30, 3)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.6, 0.6, 10)
    index = np.array([(0, k, v) for k in range(10) for v in (-1.0, 0.0, 1.0)])
    raw = np.repeat(base[None], len(index), 0)
    raw[np.arange(len(index)), index[:, 1].astype(int)] = index[:, 2]
    return np.concatenate([raw, rng.uniform(-1, 1, (n_random, 10))]).astype(np.float32), index


def write_reference(folder: Path, raw: np.ndarray, index: np.ndarray) -> None:
    """Render raw latents with our scene into REF_DIR's layout: images/ (RGBA, as Blender writes) and masks/."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    np.save(folder / "raw_latents.npy", raw)
    np.save(folder / "sweep_index.npy", index)
    images, coverage = renderer.render_with_masks(torch.from_numpy(generate_latents.raw_to_scene(raw)), SIZE)
    for i, (image, mask) in enumerate(zip(images.numpy(), coverage.numpy())):
        rgba = np.concatenate([image, np.full((SIZE, SIZE, 1), 255, np.uint8)], -1)
        Image.fromarray(rgba).save(folder / "images" / image_name(i, len(raw)))
        grey = (mask * 255 + 0.5).astype(np.uint8)
        Image.fromarray(np.repeat(grey[..., None], 3, -1)).save(folder / "masks" / image_name(i, len(raw)))


@pytest.fixture(scope="module")
def own_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    write_reference(folder, *sweeps_and_random())
    return folder


def test_our_own_renders_match_themselves(own_folder, capsys):
    compare.main([str(own_folder), "--out", str(own_folder / "out")])
    out = capsys.readouterr().out
    ratios = [float(line.split()[-3]) for line in out.splitlines() if line.split()[-1:] == ["ok"] and "x1.5" in line]
    assert len(ratios) == 7 and np.allclose(ratios, 1.0, atol=0.02)
    assert "median 1.000" in out and out.rstrip().endswith("all fidelity targets met")
    assert (own_folder / "out" / f"{own_folder.name}.txt").read_text().strip() == out.strip()
    picture = np.asarray(Image.open(own_folder / "out" / f"{own_folder.name}_side_by_side.png"))
    assert picture.shape == (2 * SIZE, 8 * SIZE, 3)  # 8 random scenes: reference above ours


def test_a_shifted_camera_fails(tmp_path, monkeypatch, capsys):
    raw, index = sweeps_and_random()
    x, y, z = renderer.CAMERA_POSITION
    monkeypatch.setattr(renderer, "CAMERA_POSITION", (x - 3.0, y + 2.0, z))
    write_reference(tmp_path / "shifted", raw, index)
    monkeypatch.undo()
    with pytest.raises(SystemExit) as failed:
        compare.main([str(tmp_path / "shifted")])
    assert failed.value.code == 1
    out = capsys.readouterr().out
    assert "silhouette IoU" in out and "MISSED" in out.split("silhouette IoU")[1]


def test_sweep_sensitivity_and_luminance_against_brute_force():
    rng = np.random.default_rng(1)
    images = rng.random((6, 4, 4, 3))
    index = np.array([[0, 2, 1.0], [0, 2, -1.0], [0, 2, 0.0], [1, 2, 0.5], [1, 2, -0.5], [0, 5, 0.0]])
    expected = np.mean([np.abs(images[2] - images[1]).mean() + np.abs(images[0] - images[2]).mean(),
                        np.abs(images[3] - images[4]).mean() * 2]) / 2  # mean step per sweep, mean over sweeps
    sensitivity = compare.sweep_sensitivity(images, index)
    assert np.isclose(sensitivity[2], expected) and np.isnan(sensitivity[[0, 5]]).all()
    luma = np.einsum("nhwc,c->nhw", images, [0.299, 0.587, 0.114])
    mean, std = compare.luminance_stats(images)
    assert np.isclose(mean, luma.mean()) and np.isclose(std, np.mean([image.std() for image in luma]))


def test_silhouette_iou_counts_half_covered_pixels():
    a = np.zeros((1, 4, 4))
    b = np.zeros((1, 4, 4))
    a[0, :2, :2], b[0, :2, :1] = 0.5, 1.0
    assert compare.silhouette_iou(a, b)[0] == pytest.approx(0.5)
    assert compare.silhouette_iou(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))[0] == 1.0


def test_a_folder_without_its_files_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: reference folder .*raw_latents.npy"):
        compare.main([str(tmp_path)])
