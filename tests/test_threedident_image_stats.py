"""tools/3dident/image_stats.py: per-channel mean/std against numpy over all pixels, the CLI, and the stats
file it writes beside the images (read back by datasets/threedident_dataset.py, errors naming the file)."""
import importlib
import json

import numpy as np
import pytest
from PIL import Image

from datasets.threedident_dataset import DatasetFormatError, read_image_stats, write_image_stats

image_stats = importlib.import_module("tools.3dident.image_stats")


def write_images(folder, heights=(5, 11)):
    """Random RGB PNGs of unequal sizes in `folder`; returns their pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, 9, 3), dtype=np.uint8) for h in heights]
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return images


def test_channel_stats_match_numpy_over_all_pixels(tmp_path, capsys):
    images = write_images(tmp_path / "images")
    mean, std = image_stats.channel_stats(sorted((tmp_path / "images").iterdir()))
    flat = np.concatenate([p.reshape(-1, 3) for p in images]) / 255.0
    assert np.allclose(mean, flat.mean(0)) and np.allclose(std, flat.std(0))
    image_stats.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert f"mean: ({flat.mean(0)[0]:.4f}" in out and f"wrote {tmp_path / 'image_stats.json'}" in out


@pytest.mark.parametrize("argument", ["", "images"])  # the dataset folder, or (as before) its images/ folder
def test_stats_file_round_trips_to_channel_stats(tmp_path, argument):
    write_images(tmp_path / "images")
    image_stats.main([str(tmp_path / argument)])
    mean, std = read_image_stats(tmp_path / "image_stats.json")
    expected = image_stats.channel_stats(sorted((tmp_path / "images").iterdir()))
    np.testing.assert_allclose(mean, expected[0], rtol=1e-12)
    np.testing.assert_allclose(std, expected[1], rtol=1e-12)
    assert json.loads((tmp_path / "image_stats.json").read_text())["images"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image_stats.json", "images"]  # no temporary file left


def test_rewriting_replaces_the_file(tmp_path):
    path = tmp_path / "image_stats.json"
    write_image_stats(path, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6], 7)
    write_image_stats(path, [0.5] * 3, [0.25] * 3, 9)
    assert read_image_stats(path) == ((0.5,) * 3, (0.25,) * 3)
    assert [p.name for p in tmp_path.iterdir()] == ["image_stats.json"]


@pytest.mark.parametrize("content, problem", [
    (None, "not found"),
    ("{\"mean\": [0.5, 0.5, 0.5]", "is not readable JSON"),
    ("[0.5, 0.2]", "needs \"mean\" and \"std\""),
    ('{"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}', "needs \"mean\" and \"std\""),
    ('{"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.0, 0.2]}', "std > 0"),
    ('{"mean": [0.5, "a", 0.5], "std": [0.2, 0.2, 0.2]}', "3 finite numbers each"),
    ('{"mean": [0.5, NaN, 0.5], "std": [0.2, 0.2, 0.2]}', "3 finite numbers each"),
])
def test_missing_or_malformed_stats_file_names_it_and_the_command(tmp_path, content, problem):
    path = tmp_path / "image_stats.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetFormatError) as error:
        read_image_stats(path)
    message = str(error.value)
    assert message.startswith(f"image statistics file {path} ") and problem in message and "\n" not in message
    assert message.endswith(f"make it with: python tools/3dident/image_stats.py {tmp_path})")


def test_folder_without_images_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="error: no .png images in"):
        image_stats.main([str(tmp_path)])
