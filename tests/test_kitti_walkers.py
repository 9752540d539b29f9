"""tools/kitti_masks/make_walkers.py: a second KITTI Masks stand-in that the loader reads, whose latents are
its masks' statistics, reproducible from its seed, temporally coherent and varied in size."""
import os
import pickle

import numpy as np
import pytest

from kitti_masks.dataset import FILE_NAME, KittiMasks, load_pickle
from tools.kitti_masks import make_walkers

N_SEQUENCES, MAX_LEN = 20, 40


def write(folder, seed: int = 0) -> str:
    make_walkers.main(["--data-dir", str(folder), "--n-sequences", str(N_SEQUENCES), "--seed", str(seed),
                       "--max-len", str(MAX_LEN)])
    return os.path.join(folder, FILE_NAME)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walkers")
    write(folder)
    return str(folder)


@pytest.fixture(scope="module")
def data(data_dir):
    return load_pickle(data_dir)


def test_file_has_the_released_format_and_loads(data_dir, data):
    assert sorted(os.listdir(data_dir)) == sorted([FILE_NAME, make_walkers.FACTORS_FILE])  # no temporary file
    with open(os.path.join(data_dir, FILE_NAME), "rb") as f:
        assert sorted(pickle.load(f)) == ["pedestrians", "pedestrians_latents"]
    masks, latents = data
    assert len(masks) == len(latents) == N_SEQUENCES
    for m, z in zip(masks, latents):
        assert m.dtype == bool and m.ndim == 3 and m.shape[1:] == (64, 64) and 2 <= len(m) <= MAX_LEN
        assert z.dtype.kind == "f" and z.shape == (len(m), 3)
    assert len(KittiMasks(masks, latents)) == sum(len(m) - 1 for m in masks)


def test_printed_line_names_the_file_and_counts(tmp_path, capsys):
    path = write(tmp_path)
    masks, _ = load_pickle(str(tmp_path))
    assert capsys.readouterr().out == (f"wrote {path}: {len(masks)} sequences, "
                                       f"{sum(len(m) for m in masks)} frames\n")


def test_latents_are_centre_of_mass_and_area_of_the_masks(data):
    for m, z in zip(*data):
        for mask, latent in zip(m, z):
            pixels = np.argwhere(mask)
            expected = [pixels[:, 0].mean(), pixels[:, 1].mean(), len(pixels)]
            np.testing.assert_allclose(latent, expected, rtol=1e-12, atol=1e-9)


def test_same_seed_same_file_other_seed_other_file(tmp_path, data_dir):
    with open(os.path.join(data_dir, FILE_NAME), "rb") as f:
        first = f.read()
    with open(write(tmp_path / "same", seed=0), "rb") as f:
        assert f.read() == first
    with open(write(tmp_path / "other", seed=1), "rb") as f:
        assert f.read() != first


def test_consecutive_frames_are_coherent(data):
    masks, latents = data
    spread = np.concatenate(latents).std(axis=0)
    steps = np.concatenate([np.abs(np.diff(z, axis=0)) for z in latents])
    assert np.all(np.median(steps, axis=0) < 0.2 * spread), (np.median(steps, axis=0), spread)
    # and the masks themselves overlap from one frame to the next (intersection over union; a slim figure
    # that steps 2 pixels sideways keeps about half of its pixels)
    iou = [np.mean([(a & b).sum() / (a | b).sum() for a, b in zip(m[:-1], m[1:])]) for m in masks]
    assert np.median(iou) > 0.3


def test_every_mask_is_visible_and_sizes_vary(data):
    areas = np.concatenate(data[1])[:, 2]
    assert areas.min() >= make_walkers.MIN_VISIBLE
    assert np.percentile(areas, 90) > 2 * np.percentile(areas, 10)
    centres = np.concatenate(data[1])[:, :2]
    assert np.all(centres.std(axis=0) > 2)  # the pedestrians move over the image, not only in size


def test_the_generative_factors_render_the_masks():
    masks, _, factors = make_walkers.generate(3, 0, MAX_LEN)
    for m, f in zip(masks, factors):
        assert f.shape == (len(m), len(make_walkers.FACTOR_NAMES))
        assert all(np.array_equal(make_walkers.render(*state), mask) for state, mask in zip(f, m))


def test_a_perfect_encoder_cannot_match_both_row_and_area():
    """Row and area both follow the depth: the exact generative factors score well below 1 as a code."""
    _, latents, factors = make_walkers.generate(60, 0, MAX_LEN)
    oracle = make_walkers.oracle_mcc(np.concatenate(latents), np.concatenate(factors))
    (row, row_corr), (column, column_corr), (area, area_corr) = [
        (make_walkers.FACTOR_NAMES[j], abs(c)) for j, c in zip(oracle["matching"], oracle["matched_correlations"])]
    assert column == "lateral" and column_corr > 0.9
    assert "depth" in (row, area) and max(row_corr, area_corr) > 0.8 and min(row_corr, area_corr) < 0.5
    assert oracle["mcc"] < 0.8


@pytest.mark.parametrize("flags, message", [(["--n-sequences", "0"], "--n-sequences"),
                                            (["--max-len", "1"], "--max-len")])
def test_bad_flags_stop_with_one_line_error(tmp_path, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        make_walkers.main(["--data-dir", str(tmp_path)] + flags)
    text = str(exit_info.value.code)
    assert text.startswith("error: ") and message in text and "\n" not in text
    assert not os.listdir(tmp_path)
