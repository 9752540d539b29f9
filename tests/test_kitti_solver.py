"""kitti_masks/solver.py and the pair stream: the contrastive loss against a brute-force one; the data order resumes."""
import itertools

import pytest
import torch
from torch import nn

from kitti_masks.dataset import KittiMasks, PairSampler, pair_batches
from kitti_masks.solver import contrastive_loss
from tools.kitti_masks.make_synthetic import WalkConfig, make_dataset


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a small shared CPU more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def brute_force_loss(codes: torch.Tensor, p: float) -> torch.Tensor:
    """Eq. 1 of the paper (compatibility mode, α = 1/2, τ = 1) with anchors = even rows, positives = odd
    rows, negatives of anchor i = every anchor rolled by one."""
    anchors, positives = codes[::2], codes[1::2]
    negatives = torch.cat([anchors[-1:], anchors[:-1]])
    losses = []
    for a, pos in zip(anchors, positives):
        d_pos = ((a - pos).abs() ** p).sum()
        d_neg = torch.stack([((a - n).abs() ** p).sum() for n in negatives] + [d_pos])
        losses.append(d_pos + torch.logsumexp(-d_neg, 0))
    return torch.stack(losses).mean()


def test_contrastive_loss_splits_interleaved_batch_and_rolls_negatives():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64 * 64, 5))
    images = torch.rand(12, 1, 64, 64).round()
    for p in (1, 2):
        loss = contrastive_loss(encoder, images, p)
        assert torch.allclose(loss, brute_force_loss(encoder(images), p), rtol=1e-5)


def synthetic_dataset(n_sequences: int) -> KittiMasks:
    data = make_dataset(n_sequences, seed=0, config=WalkConfig(max_len=40))
    return KittiMasks(data["pedestrians"], data["pedestrians_latents"], max_delta_t=3)


def take(iterator, n: int) -> list:
    return [next(iterator) for _ in range(n)]


def test_pair_stream_resumes_at_any_batch_and_ignores_the_workers():
    """Batches 5… of a stream opened at 5 are those of a stream opened at 0, across epoch ends."""
    dataset = synthetic_dataset(3)
    batches_per_epoch = len(dataset) // 4
    whole = take(pair_batches(dataset, 8, 0, seed=1), 2 * batches_per_epoch + 3)
    tail = take(pair_batches(dataset, 8, 2, seed=1, start=5), len(whole) - 5)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(whole[5:], tail))
    other_seed = next(pair_batches(dataset, 8, 0, seed=2))
    assert not torch.equal(other_seed[1], whole[0][1])


def test_sampler_visits_every_pair_once_per_epoch_with_gaps_in_range():
    dataset = synthetic_dataset(3)
    items = list(itertools.islice(iter(PairSampler(dataset, seed=0)), len(dataset)))
    assert sorted(i for i, _ in items) == list(range(len(dataset)))
    assert {k for _, k in items} <= {1, 2, 3}
