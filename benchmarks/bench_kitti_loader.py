"""Does the KITTI Masks loader keep up with training? (paper §5.2, performance.)

Measures in one run, on the synthetic stand-in: the generator's frames/s, the time the loader takes
to deliver one batch (in the main process, num_workers 0), and the time of one contrastive training
step on the same batch size. Prints the ratio step time / batch time (target ≥ 10: the loader alone
could feed ten trainers).

    python -m benchmarks.bench_kitti_loader --batch-size 64 --threads 1
"""
from __future__ import annotations

import argparse
import time

import torch

from kitti_masks.dataset import KittiMasks, pair_batches
from kitti_masks.model import get_conv_encoder
from kitti_masks.solver import contrastive_loss
from tools.kitti_masks.make_synthetic import make_dataset


def seconds_per_call(fn, n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64 = 32 pairs)")
    parser.add_argument("--n-sequences", type=int, default=300, help="synthetic sequences (default 300)")
    parser.add_argument("--n-batches", type=int, default=200, help="batches timed for the loader (default 200)")
    parser.add_argument("--n-steps", type=int, default=20, help="training steps timed (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    data = make_dataset(args.n_sequences, seed=0)
    generator_s = time.perf_counter() - start
    n_frames = sum(len(m) for m in data["pedestrians"])
    print(f"generator: {n_frames} frames in {generator_s:.2f} s = {n_frames / generator_s:.0f} frames/s")

    dataset = KittiMasks(data["pedestrians"], data["pedestrians_latents"])
    batches = pair_batches(dataset, args.batch_size, num_workers=0, seed=0)
    batch_s = seconds_per_call(lambda: next(batches), args.n_batches)
    print(f"loader: {batch_s * 1e3:.2f} ms per batch of {args.batch_size} = {args.batch_size / batch_s:.0f} images/s")

    encoder = get_conv_encoder(10, box_norm=True)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-4)
    images = next(batches)[0]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        contrastive_loss(encoder, images, p=1).backward()
        optimizer.step()
    step_s = seconds_per_call(step, args.n_steps)
    print(f"training step (CPU, {args.threads} thread(s)): {step_s * 1e3:.1f} ms per batch of {args.batch_size}")
    print(f"ratio step / loader: {step_s / batch_s:.1f} (target ≥ 10)")


if __name__ == "__main__":
    main()
