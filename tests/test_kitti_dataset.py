"""kitti_masks/dataset.py: pair sampling, item format, interleaved batches, file errors, a pickle that
would run code."""
import pickle

import numpy as np
import pytest
import torch

from kitti_masks.dataset import FILE_NAME, KittiFormatError, KittiMasks, get_data_loader, load_pickle
from tools.kitti_masks.make_synthetic import WalkConfig, make_dataset, write_synthetic

LENGTHS = (2, 5, 9)


def labelled_sequences():
    """Random masks whose latents are (sequence, frame, 0): every item says where it came from."""
    rng = np.random.default_rng(0)
    masks = [rng.random((n, 64, 64)) < 0.3 for n in LENGTHS]
    latents = [np.stack([np.full(n, s), np.arange(n), np.zeros(n)], 1).astype(np.float32)
               for s, n in enumerate(LENGTHS)]
    return masks, latents


def test_length_is_number_of_frames_with_a_successor(tmp_path):
    path, n_frames = write_synthetic(str(tmp_path), 7, seed=0, config=WalkConfig(max_len=20))
    masks, _ = load_pickle(str(tmp_path))
    assert len(KittiMasks.from_dir(str(tmp_path))) == sum(len(m) - 1 for m in masks) == n_frames - 7


@pytest.mark.parametrize("max_delta_t", [1, 3])
def test_items_are_pairs_t_t_plus_k_clipped_to_the_sequence(max_delta_t):
    masks, latents = labelled_sequences()
    dataset = KittiMasks(masks, latents, max_delta_t=max_delta_t)
    steps = {}
    for _ in range(30):
        for i in range(len(dataset)):
            x1, x2, z1, z2 = dataset[i]
            seq, t, t2 = int(z1[0]), int(z1[1]), int(z2[1])
            assert int(z2[0]) == seq and x1.shape == (1, 64, 64) and x1.dtype == torch.float32
            assert torch.equal(x1[0], torch.from_numpy(masks[seq][t]).float())
            assert torch.equal(x2[0], torch.from_numpy(masks[seq][t2]).float())
            steps.setdefault(LENGTHS[seq] - 1 - t, set()).add(t2 - t)  # key: frames left after t
    for left, seen in steps.items():
        assert seen == set(range(1, min(max_delta_t, left) + 1))


def test_batches_interleave_pairs():
    masks, latents = labelled_sequences()
    loader = get_data_loader(KittiMasks(masks, latents, max_delta_t=2), batch_size=6, num_workers=0)
    images, z = next(iter(loader))
    assert images.shape == (6, 1, 64, 64) and z.shape == (6, 3)
    assert set(images.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(z[::2, 0], z[1::2, 0])
    assert set((z[1::2, 1] - z[::2, 1]).tolist()) <= {1.0, 2.0}
    for image, (seq, t, _) in zip(images, z.long().tolist()):
        assert torch.equal(image[0], torch.from_numpy(masks[seq][t]).float())
    assert len(loader) == sum(n - 1 for n in LENGTHS) // 3


def test_missing_pickle_says_where_and_how(tmp_path):
    with pytest.raises(KittiFormatError) as e:
        load_pickle(str(tmp_path))
    message = str(e.value)
    assert str(tmp_path / FILE_NAME) in message and "zenodo" in message and "\n" not in message


@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps({"pedestrians": []}),
                                     pickle.dumps({"pedestrians": [np.zeros((3, 32, 32), bool)],
                                                   "pedestrians_latents": [np.zeros((3, 3))]})])
def test_corrupt_pickle_is_a_one_line_error(tmp_path, content):
    (tmp_path / FILE_NAME).write_bytes(content)
    with pytest.raises(KittiFormatError) as e:
        load_pickle(str(tmp_path))
    assert str(tmp_path / FILE_NAME) in str(e.value) and "\n" not in str(e.value)


def test_pickle_that_would_run_code_is_refused(tmp_path, code_payload):
    payload, marker = code_payload
    data = make_dataset(2, seed=0, config=WalkConfig(max_len=5))
    (tmp_path / FILE_NAME).write_bytes(pickle.dumps({**data, "pedestrians_latents": payload}))
    with pytest.raises(KittiFormatError) as e:
        load_pickle(str(tmp_path))
    message = str(e.value)
    assert str(tmp_path / FILE_NAME) in message and "open" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_released_format_loads_in_every_pickle_protocol(tmp_path, protocol):
    """The released file was written by an older numpy and Python; make_synthetic writes protocol 5."""
    data = make_dataset(3, seed=0, config=WalkConfig(max_len=5))
    (tmp_path / FILE_NAME).write_bytes(pickle.dumps(data, protocol=protocol))
    masks, latents = load_pickle(str(tmp_path))
    for loaded, written in zip(masks + latents, data["pedestrians"] + data["pedestrians_latents"]):
        assert loaded.dtype == written.dtype and np.array_equal(loaded, written)


def test_pickle_of_numpy_1_loads(tmp_path):
    """numpy 1 named the array helper numpy.core.multiarray._reconstruct (numpy 2: numpy._core...)."""
    data = make_dataset(3, seed=0, config=WalkConfig(max_len=5))
    content = pickle.dumps(data, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in content
    (tmp_path / FILE_NAME).write_bytes(content)
    masks, _ = load_pickle(str(tmp_path))
    assert all(np.array_equal(m, w) for m, w in zip(masks, data["pedestrians"]))
