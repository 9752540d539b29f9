"""Pair sampling against a 250 000-render index (paper §5.3): batched faiss search (ours: a k=1 call for
the batch plus a k=2 call for the z̃ that hit z's render) vs one k=2 call for the batch vs one search
per item (the original's formulation: z with k=1, z̃ with k=2). Prints pairs/s of each and the
ratios, measured in the same run; random latents stand in for renders.

    python benchmarks/bench_3dident_pair_sampling.py [--approximate]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets.faiss_index import build_index, search_pairs  # noqa: E402
from datasets.threedident_latents import build_latent_space, select_columns  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Batched vs item-by-item faiss pair search.")
    parser.add_argument("--n-renders", type=int, default=250000, help="Index size (250000 as released).")
    parser.add_argument("--batch-size", type=int, default=512, help="Pairs per batch (512 as in the paper).")
    parser.add_argument("--batches", type=int, default=4, help="Batches timed per method.")
    parser.add_argument("--approximate", action="store_true", help="IVF1024_HNSW32 index instead of exact.")
    parser.add_argument("--threads", type=int, default=1, help="faiss OpenMP threads (1 on a shared CPU).")
    return parser


def item_by_item(index: faiss.Index, z: np.ndarray, z_tilde: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: one search for each z and one for each z̃, as the original did per item."""
    idx, idx_tilde = np.empty(len(z), np.int64), np.empty(len(z), np.int64)
    for i in range(len(z)):
        idx[i] = index.search(z[i:i + 1], 1)[1][0, 0]
        cand = index.search(z_tilde[i:i + 1], 2)[1][0]
        idx_tilde[i] = cand[1] if cand[0] == idx[i] else cand[0]
    return idx, idx_tilde


def one_k2_call(index: faiss.Index, z: np.ndarray, z_tilde: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: a single k=2 search for all 2B queries of the batch."""
    neighbours = index.search(np.concatenate([z, z_tilde]), 2)[1]
    idx, cand = neighbours[:len(z), 0], neighbours[len(z):]
    return idx, np.where(cand[:, 0] == idx, cand[:, 1], cand[:, 0])


def pairs_per_second(method, index, batches) -> tuple[float, list]:
    start = time.perf_counter()
    results = [method(index, z, z_tilde) for z, z_tilde in batches]
    return sum(len(z) for z, _ in batches) / (time.perf_counter() - start), results


def main() -> None:
    args = get_args_parser().parse_args()
    faiss.omp_set_num_threads(args.threads)
    torch.manual_seed(0)
    layout = select_columns(non_periodic=True)
    space = build_latent_space(layout, "l2", sigma=0.1)
    renders = space.sample_marginal(args.n_renders, "cpu").numpy()
    start = time.perf_counter()
    index = build_index(renders, args.approximate)
    print(f"{'approximate' if args.approximate else 'exact'} index over {args.n_renders} latents built in "
          f"{time.perf_counter() - start:.1f} s; faiss threads {args.threads}, batch {args.batch_size}")
    batches = []
    for _ in range(args.batches):
        z = space.sample_marginal(args.batch_size, "cpu")
        batches.append((z.numpy(), space.sample_conditional(z, args.batch_size, "cpu").numpy()))
    batched, ours = pairs_per_second(search_pairs, index, batches)
    one_call, _ = pairs_per_second(one_k2_call, index, batches)
    single, reference = pairs_per_second(item_by_item, index, batches)
    agree = np.mean([np.mean(np.concatenate(a) == np.concatenate(b)) for a, b in zip(ours, reference)])
    clashes = np.mean([np.mean(index.search(zt, 1)[1] == index.search(z, 1)[1]) for z, zt in batches])
    print(f"z̃ whose nearest render is z's: {clashes:.1%}")
    print(f"ours (k=1 batch + k=2 clashes): {batched:8.0f} pairs/s")
    print(f"one k=2 call per batch:         {one_call:8.0f} pairs/s")
    print(f"item by item (reference):       {single:8.0f} pairs/s")
    print(f"speed-up vs item by item: ours {batched / single:.1f}x, one k=2 call {one_call / single:.1f}x; "
          f"ours vs one k=2 call {batched / one_call:.1f}x (same renders as item by item: {agree:.1%})")


if __name__ == "__main__":
    main()
