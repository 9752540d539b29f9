"""tools/kitti_masks/make_synthetic.py: step law, latents, body shape and the pickle's format."""
import numpy as np
import pytest
import scipy.stats

from tools.kitti_masks.make_synthetic import (WalkConfig, generalized_normal, make_dataset, mask_latents,
                                             render_masks)


def test_generalized_normal_matches_scipy_gennorm():
    rng = np.random.default_rng(0)
    x = generalized_normal(rng, scale=0.6, beta=0.6, size=20_000)
    assert scipy.stats.kstest(x, scipy.stats.gennorm(0.6, scale=0.6).cdf).pvalue > 1e-3


def test_mask_latents_brute_force():
    rng = np.random.default_rng(1)
    masks = rng.random((4, 64, 64)) < 0.1
    for mask, (row, col, area) in zip(masks, mask_latents(masks)):
        r, c = np.nonzero(mask)
        assert area == len(r)
        assert row == pytest.approx(r.mean(), abs=1e-4) and col == pytest.approx(c.mean(), abs=1e-4)


def test_body_is_not_rotation_or_mirror_symmetric():
    mask = render_masks(np.array([31.5]), np.array([31.5]), np.array([50.0]), facing=1.0)[0]
    for other in (np.rot90(mask, 2), mask[:, ::-1]):
        iou = (mask & other).sum() / (mask | other).sum()
        assert iou < 0.85


def test_dataset_format_and_latents_from_masks():
    config = WalkConfig(max_len=25)
    data = make_dataset(12, seed=3, config=config)
    assert set(data) == {"pedestrians", "pedestrians_latents"}
    for masks, latents in zip(data["pedestrians"], data["pedestrians_latents"]):
        assert masks.dtype == bool and masks.shape[1:] == (64, 64) and 2 <= len(masks) <= config.max_len
        np.testing.assert_array_equal(latents, mask_latents(masks))
        assert latents[:, 2].min() >= config.min_area


def test_sequence_ends_when_the_mask_gets_too_small():
    config = WalkConfig(max_len=400)  # the walk leaves the frame or shrinks long before 400 frames
    lengths = [len(m) for m in make_dataset(10, seed=4, config=config)["pedestrians"]]
    assert max(lengths) < config.max_len


def test_deterministic_for_a_seed():
    a, b = (make_dataset(3, seed=5)["pedestrians"] for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
