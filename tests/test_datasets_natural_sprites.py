"""datasets/natural_sprites.py: the sequences file, pairs of consecutive frames, discretisation, items, errors."""
import numpy as np
import pytest

from datasets.factor_pairs import DataFormatError
from datasets.natural_sprites import FILE_NAME, NaturalSprites, discretise, pair_starts, read_sequences
from tools.slowvae_data.natural_sprites import make_sequences


@pytest.fixture(scope="module")
def sequences():
    return make_sequences(20, seed=0)


def test_generator_writes_the_file_the_reader_expects(tmp_path, sequences):
    np.savez(tmp_path / FILE_NAME, **sequences)
    latents, lengths = read_sequences(str(tmp_path))
    assert latents.shape == (lengths.sum(), 3) and (lengths >= 2).all()
    steps = np.diff(latents[:lengths[0]], axis=0)
    assert np.median(np.abs(steps[:, :2])) < 1.5  # slow, sparse transitions (pixels per frame)


def test_pairs_are_consecutive_frames_of_one_sequence_without_area_outliers():
    latents = np.column_stack([np.arange(12.0), np.arange(12.0), np.r_[100.0, np.full(10, 50.0), 1.0]])
    starts = pair_starts(latents, np.array([5, 7]), outliers=0.2)
    assert set(starts) <= {0, 1, 2, 3, 5, 6, 7, 8, 9, 10} and 4 not in starts  # 4 → 5 crosses sequences
    assert 0 not in starts and 10 not in starts  # the area outliers 100 and 1


def test_discretise_snaps_to_the_bin_centres():
    values = np.random.default_rng(0).uniform(0, 64, 1000)
    snapped = discretise(values, 32)
    assert len(np.unique(snapped)) == 32 and np.abs(snapped - values).max() <= 64 / 32 / 2 + 1e-9


def test_a_pair_shares_shape_and_orientation_and_shows_its_recorded_positions(sequences):
    data = NaturalSprites(sequences["latents"].astype(float), sequences["lengths"])
    x1, x2, z1, z2 = data[3, 11]
    assert x1.shape == (1, 64, 64) and z1[3:].tolist() == z2[3:].tolist()
    frame = data.starts[3]
    x, y, area = data.latents[frame]
    rows, cols = np.nonzero(x1[0].numpy() > 0.5)
    assert abs(rows.mean() - y) < 3 and abs(cols.mean() - x) < 3 and z1[0] == pytest.approx(x / 64)
    assert data[3, 11][1].equal(x2)


def test_discrete_mode_has_32_32_6_values_and_eval_samples_render_their_keys(sequences):
    data = NaturalSprites(sequences["latents"].astype(float), sequences["lengths"], discrete=True)
    assert [len(np.unique(data.latents[:, i])) for i in range(3)] == [32, 32, 6]
    keys, factors = data.eval_sample(40, np.random.default_rng(0))
    assert keys.shape == (40, 3) and factors.shape == (40, 5)
    images = data.eval_images(keys[:4])
    assert images.shape == (4, 1, 64, 64) and images.flatten(1).sum(1).min() > 0


def test_inconsistent_or_truncated_files_are_errors_naming_the_file(tmp_path, sequences):
    path = tmp_path / FILE_NAME
    np.savez(path, latents=sequences["latents"], lengths=sequences["lengths"] + 1)
    with pytest.raises(DataFormatError, match=f"{path}: lengths"):
        read_sequences(str(tmp_path))
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFormatError, match=f"{path} is truncated"):
        read_sequences(str(tmp_path))
