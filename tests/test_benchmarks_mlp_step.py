"""benchmarks/bench_mlp_step.py: its naive reference computes our loss, and a measured step runs."""
import pytest
import torch

import main_mlp
from benchmarks import bench_mlp_step as bench


@pytest.mark.parametrize("p", [1, 2])
def test_naive_reference_equals_our_loss(p):
    args = main_mlp.get_args_parser().parse_args(["--p", str(p)])
    h1, h2 = torch.randn(64, 10), torch.randn(64, 10)
    ours = main_mlp.build_loss(args, "unsupervised")(None, None, h1, h2)
    assert bench.naive_lp_simclr(p)(None, None, h1, h2) == pytest.approx(ours.item(), rel=1e-5)


def test_measure_times_the_scripts_training_step():
    out = bench.measure("ours", 1, steps=1, batch_size=32)
    assert out["step_s"] > 0 and out["encoder_s"] > 0 and out["eval_s"] > 0
