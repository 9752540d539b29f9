"""tools/3dident/generate_latents.py: raw latents per variant/option, the sphere-angle map and the
renderer ranges, and the files the CLI writes."""
import importlib
import math

import numpy as np
import pytest

from datasets.threedident_latents import select_columns

gen = importlib.import_module("tools.3dident.generate_latents")


def angles_to_sphere(phi: np.ndarray) -> np.ndarray:
    """Inverse hyperspherical map (oracle): s_k = cos φ_k ∏_{j<k} sin φ_j, last = ∏ sin φ_j."""
    n, d = phi.shape[0], phi.shape[1] + 1
    s, prod = np.empty((n, d)), np.ones(n)
    for k in range(d - 1):
        s[:, k] = prod * np.cos(phi[:, k])
        prod = prod * np.sin(phi[:, k])
    s[:, -1] = prod
    return s


def test_box_variant_is_uniform_in_the_box():
    raw = gen.sample_raw_latents(20000, np.random.default_rng(0))
    assert raw.shape == (20000, 10) and raw.dtype == np.float32
    assert raw.min() >= -1 and raw.max() <= 1
    assert np.allclose(raw.mean(0), 0, atol=0.03) and np.allclose(raw.var(0), 1 / 3, atol=0.02)


def test_periodic_variant_lies_on_the_sphere():
    raw = gen.sample_raw_latents(5000, np.random.default_rng(0), periodic=True)
    assert raw.shape == (5000, 11)
    assert np.allclose(np.linalg.norm(raw[:, 3:], axis=1), 1, atol=1e-5)
    assert np.allclose(raw[:, 3:].mean(0), 0, atol=0.03)


@pytest.mark.parametrize("periodic", [False, True])
def test_options_fix_their_columns(periodic):
    rng = np.random.default_rng(0)
    pos_only = gen.sample_raw_latents(100, rng, periodic, position_only=True)
    assert np.ptp(pos_only[:, 3:], axis=0).max() == 0 and np.ptp(pos_only[:, :3], axis=0).min() > 1
    rot_col = gen.sample_raw_latents(100, rng, periodic, rotation_and_color_only=True)
    assert np.ptp(rot_col[:, :3], axis=0).max() == 0 and np.ptp(rot_col[:, 3:], axis=0).min() > 0.5
    assert np.allclose(gen.raw_to_scene(pos_only)[:, 3:7], [0, 0, 0, 0], atol=1e-6)


def test_rotation_only_varies_the_columns_main_3dident_reads():
    columns = select_columns(True, rotation_only=True).columns
    spread = np.ptp(gen.sample_raw_latents(200, np.random.default_rng(0), rotation_only=True), axis=0)
    assert np.flatnonzero(spread).tolist() == list(columns) and spread[list(columns)].min() > 1.5
    spread = np.ptp(gen.sample_raw_latents(200, np.random.default_rng(0), rotation_only=True, fixed_spotlight=True), 0)
    assert np.flatnonzero(spread).tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="non-periodic"):
        gen.sample_raw_latents(10, np.random.default_rng(0), periodic=True, rotation_only=True)
    with pytest.raises(ValueError, match="exclude"):
        gen.sample_raw_latents(10, np.random.default_rng(0), rotation_and_color_only=True, rotation_only=True)


def test_fixed_spotlight_and_bad_combinations():
    raw = gen.sample_raw_latents(100, np.random.default_rng(0), fixed_spotlight=True)
    assert (raw[:, [6, 8]] == 0).all() and np.ptp(raw[:, [7, 9]], axis=0).min() > 1
    with pytest.raises(ValueError, match="fixed-spotlight"):
        gen.sample_raw_latents(10, np.random.default_rng(0), periodic=True, fixed_spotlight=True)
    with pytest.raises(ValueError, match="exclude"):
        gen.sample_raw_latents(10, np.random.default_rng(0), position_only=True, rotation_and_color_only=True)


def test_sphere_to_angles_inverts_the_spherical_map():
    s = gen.sample_raw_latents(500, np.random.default_rng(1), periodic=True)[:, 3:].astype(np.float64)
    phi = gen.sphere_to_angles(s)
    assert phi.shape == (500, 7)
    assert (phi[:, :-1] >= 0).all() and (phi[:, :-1] <= math.pi).all()
    assert np.allclose(angles_to_sphere(phi), s, atol=1e-9)


@pytest.mark.parametrize("periodic", [False, True])
def test_scene_values_stay_in_the_documented_ranges(periodic):
    scene = gen.raw_to_scene(gen.sample_raw_latents(5000, np.random.default_rng(2), periodic))
    low = [-3, -3, -3, -math.pi / 2, -math.pi / 2, -math.pi / 2, -math.pi / 2, 0, 0, 0]
    high = [3, 3, 3, math.pi / 2, math.pi / 2, math.pi / 2, math.pi / 2, 0.9, 0.9, 1.0]
    assert (scene >= np.array(low) - 1e-5).all() and (scene <= np.array(high) + 1e-5).all()


def test_cli_writes_both_files(tmp_path):
    gen.main([str(tmp_path / "d"), "--n", "50", "--periodic", "--seed", "3"])
    raw, scene = np.load(tmp_path / "d" / "raw_latents.npy"), np.load(tmp_path / "d" / "latents.npy")
    assert raw.shape == (50, 11) and scene.shape == (50, 10)
    assert np.allclose(scene, gen.raw_to_scene(raw))
