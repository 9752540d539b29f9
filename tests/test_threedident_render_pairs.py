"""tools/3dident/render_pairs.py and the pair folders it writes: the positives follow the truncated conditional
(against its distribution function), every image is a fresh render of its latents, a second run renders only what
is missing or stale, and the pair stream (datasets/threedident_dataset.PairFolderDataset, main_3dident.py --pairs
rendered) visits each pair once per epoch and resumes in the same order."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

import main_3dident
from datasets.threedident_dataset import PAIR_PARTS, PairFolderDataset, image_name
from datasets.threedident_latents import ROTATION
from distributed_utils import shard
from tests.test_threedident_main import import_tool
from training_loop import Stream

render_pairs, renderer, generate_latents = map(import_tool, ("render_pairs", "renderer", "generate_latents"))

N, SIZE, SIGMA = 12, 16, 0.3
# the conditional's 1-d law around z with scale σ (spaces.py: l3 has density ∝ exp(-|x/σ|^3))
LAWS = {"l2": lambda z, s: stats.norm(z, s), "l1": lambda z, s: stats.laplace(z, s),
        "l3": lambda z, s: stats.gennorm(3, z, s)}


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs") / "p"
    assert render_pairs.write_pair_folder(folder, N, "l2", SIGMA, seed=3, size=SIZE) == 2 * N
    return folder


def truncated_cdf(law, x: np.ndarray) -> np.ndarray:
    """P(X ≤ x) for X ~ `law` truncated to [-1, 1]: uniform on [0, 1] when x is drawn from that law."""
    low, high = law.cdf(-1.0), law.cdf(1.0)
    return (law.cdf(x) - low) / (high - low)


@pytest.mark.parametrize("conditional", list(LAWS))
def test_positives_follow_the_truncated_conditional(conditional):
    """z̃ | z has the box-truncated law of the conditional: its distribution function maps the 10 × 10 000 stored
    coordinates to U(0, 1) (Kolmogorov-Smirnov), and a law 10 % wider does not."""
    sigma = 0.2
    z, z_tilde = render_pairs.sample_pairs(10000, conditional, sigma, seed=1)
    assert ((z_tilde >= -1) & (z_tilde <= 1)).all()
    assert stats.kstest(z.ravel(), "uniform", args=(-1, 2)).pvalue > 1e-3  # anchors: the uniform marginal
    assert stats.kstest(truncated_cdf(LAWS[conditional](z, sigma), z_tilde).ravel(), "uniform").pvalue > 1e-3
    assert stats.kstest(truncated_cdf(LAWS[conditional](z, 1.1 * sigma), z_tilde).ravel(), "uniform").pvalue < 1e-6


@pytest.mark.parametrize("share, kept", [("rotations", ROTATION), ("geometry", range(7)), ("pose", range(6))])
def test_a_warm_up_share_keeps_the_conditional_and_redraws_the_other_latents(share, kept):
    """--share rotations (α, β, γ), geometry (all but the three hues) and pose (position and rotations): z and z̃'s
    shared columns are those of --share all; z̃'s other columns are uniform on [-1, 1] and uncorrelated with z
    (|ρ| within 5 standard errors of 0)."""
    z_all, tilde_all = render_pairs.sample_pairs(5000, "l2", 0.2, seed=4)
    z, z_tilde = render_pairs.sample_pairs(5000, "l2", 0.2, seed=4, share=share)
    kept = list(kept)
    other = [j for j in range(10) if j not in kept]
    np.testing.assert_array_equal(z, z_all)
    np.testing.assert_array_equal(z_tilde[:, kept], tilde_all[:, kept])
    assert stats.kstest(z_tilde[:, other].ravel(), "uniform", args=(-1, 2)).pvalue > 1e-3
    assert max(abs(np.corrcoef(z[:, j], z_tilde[:, j])[0, 1]) for j in other) < 5 / 5000 ** 0.5
    with pytest.raises(ValueError, match="share"):
        render_pairs.sample_pairs(10, share="colours")


def test_rotation_sigma_sets_the_rotations_spread_only():
    """--rotation-sigma 0.05 with --sigma 0.3: away from the walls z̃ − z has a std of 0.05 in α, β, γ (4 standard
    errors) and keeps the other seven columns of --sigma 0.3 exactly."""
    z, tilde_all = render_pairs.sample_pairs(20000, "l2", 0.3, seed=5)
    z_rot, z_tilde = render_pairs.sample_pairs(20000, "l2", 0.3, seed=5, rotation_sigma=0.05)
    other = [j for j in range(10) if j not in ROTATION]
    np.testing.assert_array_equal(z_rot, z)
    np.testing.assert_array_equal(z_tilde[:, other], tilde_all[:, other])
    for j in ROTATION:
        inside = np.abs(z[:, j]) < 0.75
        d, m = (z_tilde - z)[inside, j], inside.sum()
        assert abs(d.std() - 0.05) < 4 * 0.05 / (2 * m) ** 0.5


def test_normal_positives_away_from_the_walls_have_mean_0_and_std_sigma():
    """Anchors more than 5σ inside the box: z̃ − z is N(0, σ²) per latent; the tolerances are 4 standard errors
    of the sample mean (σ/√m) and of the sample std (σ/√(2m)) over the m such anchors."""
    sigma = 0.1
    z, z_tilde = render_pairs.sample_pairs(20000, "l2", sigma, seed=2)
    for j in range(z.shape[1]):
        inside = np.abs(z[:, j]) < 1 - 5 * sigma
        d, m = (z_tilde - z)[inside, j], inside.sum()
        assert abs(d.mean()) < 4 * sigma / m ** 0.5
        assert abs(d.std() - sigma) < 4 * sigma / (2 * m) ** 0.5


def test_every_image_is_a_fresh_render_of_its_latents(pair_folder):
    spec = json.loads((pair_folder / "pairs.json").read_text())
    assert spec == {"n": N, "conditional": "l2", "sigma": SIGMA, "seed": 3, "size": SIZE, "share": "all",
                    "rotation_sigma": SIGMA}
    for part, raw in zip(PAIR_PARTS, render_pairs.sample_pairs(N, "l2", SIGMA, seed=3)):
        np.testing.assert_array_equal(np.load(pair_folder / part / "raw_latents.npy"), raw)
        scene = np.load(pair_folder / part / "latents.npy")
        np.testing.assert_array_equal(scene, generate_latents.raw_to_scene(raw))
        fresh = renderer.render(torch.from_numpy(scene), SIZE).numpy().astype(int)
        for i in range(N):
            saved = np.asarray(Image.open(pair_folder / part / "images" / image_name(i, N))).astype(int)
            assert np.abs(saved - fresh[i]).max() <= 1  # batching may move a rounding
    assert set(json.loads((pair_folder / "image_stats.json").read_text())) == {"mean", "std", "images"}


def test_a_second_run_renders_only_what_is_missing_or_stale(tmp_path):
    folder = tmp_path / "p"
    assert render_pairs.write_pair_folder(folder, 6, "l2", SIGMA, size=8) == 12
    kept = folder / "anchors" / "images" / "2.png"
    before = kept.stat().st_mtime_ns
    (folder / "positives" / "images" / "4.png").unlink()
    assert render_pairs.write_pair_folder(folder, 6, "l2", SIGMA, size=8) == 1
    assert render_pairs.write_pair_folder(folder, 6, "l2", 0.2, size=8) == 6  # same anchors, new positives
    assert kept.stat().st_mtime_ns == before


def open_pairs(folder: Path, batch_size: int = 4, seed: int = 0) -> PairFolderDataset:
    return PairFolderDataset(folder, batch_size, seed=seed)


def batches(stream, n: int) -> list:
    return [next(stream) for _ in range(n)]


def test_each_epoch_visits_every_pair_once_with_its_own_images(pair_folder):
    data = open_pairs(pair_folder)
    anchors, positives = (np.load(pair_folder / part / "raw_latents.npy") for part in PAIR_PARTS)
    epochs = [torch.cat([b[0] for b in batches(iter(data), 6)][k:k + 3]) for k in (0, 3)]
    orders = [[int(np.flatnonzero((anchors == row.numpy()).all(1))[0]) for row in epoch] for epoch in epochs]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(N)) and orders[0] != orders[1]
    z, z_tilde, x, x_tilde = data.batch(1)
    idx = data.pair_indices(1)
    assert torch.equal(z_tilde, torch.from_numpy(positives[idx]))
    assert torch.equal(x, data.anchors.images(idx)) and torch.equal(x_tilde, data.positives.images(idx))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, SIZE, SIZE)


def test_a_resumed_stream_sees_the_pairs_of_one_left_alone(pair_folder):
    """What main_3dident does on --resume: a new stream opened at the checkpoint's batch position."""
    def stream(position: int = 0) -> Stream:
        data = open_pairs(pair_folder, seed=5)
        return Stream(lambda p: iter(main_3dident.pair_loader(main_3dident.with_start(data, p), 0)), position)

    alone = batches(stream(), 7)
    first = stream()
    head = batches(first, 2)
    tail = batches(stream(first.position), 5)
    for left, resumed in zip(alone, head + tail):
        assert all(torch.equal(a, b) for a, b in zip(left, resumed))
    other_seed = next(iter(open_pairs(pair_folder, seed=6)))
    assert not torch.equal(other_seed[0], alone[0][0])


def test_ranks_split_each_global_batch_of_pairs(pair_folder):
    whole = open_pairs(pair_folder).batch(2)
    parts = []
    for rank in range(2):
        data = open_pairs(pair_folder)
        data.rows = shard(4, rank, 2)
        parts.append(data.batch(2))
    for item, value in enumerate(whole):
        assert torch.equal(value, torch.cat([part[item] for part in parts]))


def test_main_trains_on_a_pair_folder(pair_folder, tmp_path, in_process_loading):
    flags = ["--offline-dataset", pair_folder, "--pairs", "rendered", "--mode", "unsupervised",
             "--non-periodic-rotation-and-color", "--batch-size", "4", "--n-eval-samples", "8", "--workers", "1",
             "--no-cuda", "--encoder", "conv", "--image-normalisation", "folder", "--iterations", "2",
             "--n-log-steps", "1", "--output-dir", tmp_path / "run"]
    with pytest.raises(SystemExit, match="holds pairs of the l2 conditional with scale 0.3: pass "
                                         "--non-periodical-conditional l2 --sigma 0.3"):
        main_3dident.main([str(a) for a in flags])
    main_3dident.main([str(a) for a in [*flags, "--sigma", "0.3"]])
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 4  # header, steps 0, 1, 2
    assert json.loads((tmp_path / "run" / "args.json").read_text())["pairs"] == "rendered"
    with pytest.raises(SystemExit, match="--pairs rendered is for training"):
        main_3dident.main([str(a) for a in [*flags, "--sigma", "0.3", "--mode", "test"]])


@pytest.mark.parametrize("aid", [{"share": "rotations"}, {"share": "geometry"},
                                 {"share": "all", "rotation_sigma": 0.1}])
def test_training_on_a_warm_up_folder_says_so(pair_folder, tmp_path, capsys, in_process_loading, aid):
    """A folder rendered with --share rotations (also one written before --rotation-sigma existed), --share geometry
    or --rotation-sigma trains, with a note that it is not the paper's method."""
    folder = tmp_path / "pairs"
    shutil.copytree(pair_folder, folder)
    spec = json.loads((folder / "pairs.json").read_text())
    spec.pop("rotation_sigma")
    (folder / "pairs.json").write_text(json.dumps({**spec, **aid}))
    main_3dident.main([str(a) for a in [
        "--offline-dataset", folder, "--pairs", "rendered", "--sigma", spec["sigma"], "--mode", "unsupervised",
        "--non-periodic-rotation-and-color", "--batch-size", "4", "--n-eval-samples", "8", "--workers", "1",
        "--no-cuda", "--encoder", "conv", "--image-normalisation", "folder", "--iterations", "1", "--n-log-steps",
        "1", "--output-dir", tmp_path / "run"]])
    assert "a warm-up aid, not the paper's method" in capsys.readouterr().out
