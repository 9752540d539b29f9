"""distributed_utils.py: two gloo processes, each with half of a global batch, compute the loss, the
gradients and the batch-norm statistics of one process on the whole batch (the scale-out of main_3dident)."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import distributed_utils
import encoders
import losses


def loss_and_gradients(rank: int, world: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """InfoNCE of rn18 on a global batch of 8 pairs (rank `rank`'s quarter or half of it): loss, all parameter
    gradients, the first batch norm's running mean after the step."""
    torch.manual_seed(0)
    f = encoders.get_resnet_encoder("rn18", 4)
    x, x_tilde = torch.randn(2, 8, 3, 16, 16)
    if world > 1:
        f = DistributedDataParallel(distributed_utils.global_batch_norm(f, torch.device("cpu")))
        rows = distributed_utils.shard(8, rank, world)
        x, x_tilde = x[rows], x_tilde[rows]
    h, h_tilde = distributed_utils.gather(f(x)), distributed_utils.gather(f(x_tilde))
    loss = losses.info_nce(h, h_tilde, torch.roll(h, 1, 0), 2).mean()
    loss.backward()
    model = f.module if world > 1 else f
    return (loss.item(), torch.cat([p.grad.flatten() for p in f.parameters()]),
            model[0].bn1.running_mean.clone())


def rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    result = loss_and_gradients(rank, world)
    torch.save(result, f"{out}.{rank}")
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_give_the_loss_and_gradients_of_the_global_batch(tmp_path):
    loss, grad, running_mean = loss_and_gradients(0, 1)
    mp.start_processes(rank_main, args=(2, free_port(), str(tmp_path / "rank")), nprocs=2, start_method="fork")
    for rank in range(2):
        rank_loss, rank_grad, rank_mean = torch.load(tmp_path / f"rank.{rank}", weights_only=True)
        assert rank_loss == pytest.approx(loss, rel=1e-6)
        torch.testing.assert_close(rank_grad, grad, rtol=1e-4, atol=1e-5 * grad.abs().max().item())
        torch.testing.assert_close(rank_mean, running_mean)
    assert not torch.equal(running_mean, torch.zeros_like(running_mean))


def test_shard_splits_evenly_or_refuses():
    assert [distributed_utils.shard(512, r, 4) for r in range(4)] == [slice(0, 128), slice(128, 256),
                                                                     slice(256, 384), slice(384, 512)]
    with pytest.raises(ValueError, match="does not split evenly"):
        distributed_utils.shard(512, 0, 3)


def test_alone_gather_is_the_identity_and_batch_norm_is_unchanged():
    t = torch.randn(3, 2, requires_grad=True)
    assert distributed_utils.gather(t) is t
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    converted = distributed_utils.global_batch_norm(model, torch.device("cpu"))
    assert isinstance(converted[1], distributed_utils.GatheredBatchNorm2d)
    x = torch.randn(5, 3, 4, 4)
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    reference.load_state_dict(converted.state_dict())
    torch.testing.assert_close(converted(x), reference(x))
