"""kitti_masks/solver.py: the contrastive step against a brute-force loss, training progress, resume."""
import pytest
import torch
from torch import nn

from kitti_masks.dataset import KittiMasks, get_data_loader
from kitti_masks.evaluation import evaluate_encoder
from kitti_masks.model import get_conv_encoder
from kitti_masks.solver import Solver, contrastive_loss
from losses import LpSimCLRLoss
from training_utils import CheckpointError
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
        loss = contrastive_loss(encoder, LpSimCLRLoss(p=p, simclr_compatibility_mode=True), images)
        assert torch.allclose(loss, brute_force_loss(encoder(images), p), rtol=1e-5)


def small_solver(tmp_path, lr=1e-4) -> Solver:
    torch.manual_seed(0)
    encoder = get_conv_encoder(10, box_norm=True)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    loss_fn = LpSimCLRLoss(p=1, simclr_compatibility_mode=True)
    return Solver(encoder, optimizer, loss_fn, torch.device("cpu"), str(tmp_path))


def synthetic_dataset(n_sequences: int) -> KittiMasks:
    data = make_dataset(n_sequences, seed=0, config=WalkConfig(max_len=40))
    return KittiMasks(data["pedestrians"], data["pedestrians_latents"])


def test_training_lowers_the_loss_and_raises_the_mcc(tmp_path):
    dataset = synthetic_dataset(60)
    solver = small_solver(tmp_path, lr=1e-3)
    untrained = evaluate_encoder(solver.encoder, dataset, solver.device, seed=0)["mcc"]
    losses = []
    solver.train(get_data_loader(dataset, 32, 0), max_iter=240, log_step=40, save_step=1000,
                 log_fn=lambda step, loss: losses.append(loss))
    trained = evaluate_encoder(solver.encoder, dataset, solver.device, seed=0)["mcc"]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert trained > untrained + 0.05
    assert (tmp_path / "last").is_file()  # saved at the end even off the save_step grid


def test_resume_continues_from_the_checkpoint(tmp_path):
    dataset = synthetic_dataset(10)
    loader = get_data_loader(dataset, 8, 0)
    first = small_solver(tmp_path)
    first.train(loader, max_iter=6, log_step=3, save_step=3, log_fn=lambda *_: None)
    resumed = small_solver(tmp_path)
    resumed.load(str(tmp_path / "last"))
    assert resumed.iteration == 6
    for a, b in zip(first.encoder.state_dict().values(), resumed.encoder.state_dict().values()):
        assert torch.equal(a, b)
    steps = []
    resumed.train(loader, max_iter=9, log_step=3, save_step=3, log_fn=lambda step, loss: steps.append(step))
    assert steps == [9]
    assert torch.load(tmp_path / "last", weights_only=True)["iteration"] == 9  # resumed runs save safely too
    assert all(s["step"] == 9 for s in resumed.optimizer.state_dict()["state"].values())


def test_checkpoint_that_does_not_fit_the_encoder_is_refused(tmp_path):
    small_solver(tmp_path).save("last")
    other = Solver(get_conv_encoder(5, box_norm=True), None, None, torch.device("cpu"), str(tmp_path))
    with pytest.raises(CheckpointError, match="does not fit this encoder"):
        other.load(str(tmp_path / "last"))


def test_checkpoints_kept_every_keep_every_iterations(tmp_path, monkeypatch):
    monkeypatch.setattr("kitti_masks.solver.KEEP_EVERY", 4)
    solver = small_solver(tmp_path)
    solver.train(get_data_loader(synthetic_dataset(10), 8, 0), max_iter=9, log_step=3, save_step=100,
                 log_fn=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4", "8", "last"]
    iterations = {name: torch.load(tmp_path / name, weights_only=True)["iteration"] for name in ("4", "8", "last")}
    assert iterations == {"4": 4, "8": 8, "last": 9}
