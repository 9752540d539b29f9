"""Two GPU bottlenecks found by tools/gpu_check.py, measured apart (one GPU, one run):

- the L1 distance matrix of main_mlp's p = 1 loss (paper §5.1, batch 6144, n = 10): forward + backward of
  torch.cdist(p=1), of the broadcast |a_i − b_j| sum, and of losses.chunked_lp_distance;
- the 3DIdent pair stream (§5.3) with 14 spawned workers at batch 512 on 224 px renders: time to the first
  batch, ms per batch over the next 20, with and without pin_memory, and the bytes of one batch;
- how long 14 processes take to import torch, faiss and main_3dident at once (a spawned worker's start).

    python benchmarks/bench_gpu_bottlenecks.py
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools" / "3dident"), str(REPO / "benchmarks")]

import generate_latents  # noqa: E402
import losses  # noqa: E402
import render_dataset  # noqa: E402
from bench_3dident_loader import open_stream  # noqa: E402


def l1_matrices(n: int = 6144, d: int = 10, repeats: int = 10) -> None:
    a = torch.randn(n, d, device="cuda", requires_grad=True)
    b = torch.randn(n, d, device="cuda")
    ways = {"cdist": lambda: torch.cdist(a, b, p=1), "broadcast": lambda: (a[:, None] - b[None]).abs().sum(-1),
            "chunked": lambda: losses.chunked_lp_distance(a, b, 1, True)}
    reference = ways["cdist"]().detach()
    for name, distances in ways.items():
        for _ in range(3):  # warm-up
            distances().logsumexp(1).sum().backward()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            a.grad = None
            d_ab = distances()
            d_ab.logsumexp(1).sum().backward()
        torch.cuda.synchronize()
        print(f"L1 {name}: {(time.perf_counter() - start) / repeats * 1000:.2f} ms fwd+bwd, "
              f"max|d-cdist| {float((d_ab.detach() - reference).abs().max()):.2e}", flush=True)


def loader(folder: Path, renders: int = 2048, workers: int = 14, batches: int = 20) -> None:
    generate_latents.main([str(folder), "--n", str(renders)])
    start = time.perf_counter()
    render_dataset.render_folder(folder, size=224, batch_size=256, device="cuda")
    print(f"render {renders}: {time.perf_counter() - start:.1f} s", flush=True)
    for pin in (False, True):
        start = time.perf_counter()
        it = iter(DataLoader(open_stream(folder, 512), batch_size=None, num_workers=workers, pin_memory=pin,
                             multiprocessing_context="spawn"))
        first = next(it)
        to_first = time.perf_counter() - start
        for _ in range(batches):
            next(it)
        per_batch = (time.perf_counter() - start - to_first) / batches
        size = sum(t.numel() * t.element_size() for t in first) / 2**20
        print(f"loader workers {workers} pin {pin}: first batch {to_first:.1f} s, then {per_batch * 1000:.0f} "
              f"ms/batch; batch bytes {size:.0f} MiB", flush=True)
        del it


def parallel_imports(processes: int = 14) -> None:
    start = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", "import torch, faiss, main_3dident"], cwd=REPO)
               for _ in range(processes)]
    for p in running:
        p.wait()
    print(f"{processes} parallel imports: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    if not torch.cuda.is_available():
        raise SystemExit("error: this benchmark needs CUDA")
    l1_matrices()
    loader(Path("runs/bench_gpu_bottlenecks"))
    parallel_imports()
