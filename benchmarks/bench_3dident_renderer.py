"""Renderer throughput (paper §5.3): images/s of the batched PyTorch renderer at 64 and 224 pixels, and
the ratio to rendering the same scenes one at a time, measured in the same run on random scenes of
the released (box) variant.

    python benchmarks/bench_3dident_renderer.py --threads 1 [--device cuda]
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
generate_latents = importlib.import_module("tools.3dident.generate_latents")
renderer = importlib.import_module("tools.3dident.renderer")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Batched vs one-at-a-time rendering throughput.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="Image sides (64 224).")
    parser.add_argument("--images", type=int, default=64, help="Scenes rendered per size and method (64).")
    parser.add_argument("--batch-size", type=int, default=32, help="Scenes per batched call (32 on a CPU).")
    parser.add_argument("--threads", type=int, default=1, help="Torch CPU threads (1 on a shared 2-core CPU).")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    return parser


def images_per_second(scenes: torch.Tensor, size: int, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(scenes), batch_size):
        renderer.render(scenes[i:i + batch_size], size)
    if scenes.is_cuda:
        torch.cuda.synchronize()
    return len(scenes) / (time.perf_counter() - start)


def main() -> None:
    args = get_args_parser().parse_args()
    torch.set_num_threads(args.threads)
    raw = generate_latents.sample_raw_latents(args.images, np.random.default_rng(0))
    scenes = torch.from_numpy(generate_latents.raw_to_scene(raw)).to(args.device)
    renderer.render(scenes[:2], 32)  # warm-up
    print(f"device {args.device}, torch threads {args.threads}, {args.images} scenes per measurement")
    for size in args.sizes:
        batched = images_per_second(scenes, size, args.batch_size)
        single = images_per_second(scenes, size, 1)
        print(f"{size:>4} px: batched ({args.batch_size}) {batched:7.1f} images/s, one at a time {single:7.1f} "
              f"images/s, ratio {batched / single:.1f}x")


if __name__ == "__main__":
    main()
