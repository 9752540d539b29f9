"""tools/kitti_masks/transition_stats.py: the pooled frame-gap changes and the fitted generalized-normal shape."""
import pickle

import numpy as np
import pytest
from scipy import stats

from kitti_masks.dataset import FILE_NAME
from tools.kitti_masks import transition_stats as ts


def test_transitions_pool_every_gap_of_every_sequence():
    latents = [np.arange(12.0).reshape(4, 3) ** 2, np.ones((2, 3)), np.zeros((1, 3))]
    got = ts.transitions(latents, 2)
    brute = [latents[0][t + 2] - latents[0][t] for t in range(2)]  # the 2- and 1-frame sequences are too short
    assert np.array_equal(got, np.array(brute))


@pytest.mark.parametrize("beta", [0.6, 1.0, 2.0])
def test_fit_shape_recovers_the_generalized_normal_shape(beta):
    samples = stats.gennorm.rvs(beta, scale=0.5, size=20000, random_state=np.random.default_rng(0))
    assert ts.fit_shape(samples) == pytest.approx(beta, rel=0.06)


def test_main_prints_one_line_per_gap_and_fails_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    latents = [np.cumsum(rng.laplace(size=(30, 3)), 0) for _ in range(20)]  # Laplace steps: β ≈ 1
    masks = [np.zeros((30, 64, 64), bool) for _ in latents]
    for m in masks:
        m[:, 10:20, 10:20] = True
    with open(tmp_path / FILE_NAME, "wb") as f:
        pickle.dump({"pedestrians": masks, "pedestrians_latents": latents}, f)
    ts.main(["--data-dir", str(tmp_path), "--gaps", "1"])
    frames, line, changes = capsys.readouterr().out.strip().splitlines()
    assert frames.startswith("600 frames; correlation: com_row–com_col ")
    assert changes.startswith("gap 1: correlation of the changes: com_row–com_col ")
    assert all(abs(float(item.split()[-1])) < 0.15 for item in changes.split(": ")[-1].split(", "))  # independent steps
    assert line.startswith("gap 1: 580 transitions; generalized-normal β: com_row ")
    betas = [float(part.split()[-1]) for part in line.split(": ")[-1].split(", ")]
    assert all(0.8 < b < 1.25 for b in betas)
    with pytest.raises(SystemExit, match="^error: KITTI Masks data not found"):
        ts.main(["--data-dir", str(tmp_path / "missing")])


def test_pair_correlations_on_a_known_dependence():
    rng = np.random.default_rng(0)
    row, col = rng.normal(size=(2, 5000))
    x = np.column_stack([row, col, 2 * row + 0.01 * rng.normal(size=5000)])  # area follows the row
    items = dict(item.rsplit(" ", 1) for item in ts.pair_correlations(x).split(", "))
    assert set(items) == {"com_row–com_col", "com_row–area", "com_col–area"}
    assert float(items["com_row–area"]) == pytest.approx(1.0, abs=0.01)
    assert abs(float(items["com_row–com_col"])) < 0.05 and abs(float(items["com_col–area"])) < 0.05
