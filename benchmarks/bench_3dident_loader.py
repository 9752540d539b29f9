"""Feeding a GPU with the 3DIdent pair stream (paper §5.3): how many data workers does a training step need?

Measures in one run and one process, on a small folder rendered with tools/3dident (reused when it is
already there) and padded to the released index size: the time per pair of each stage the pair stream
does per batch — draw z, z̃; snap both to their nearest renders (faiss, batched as the dataset does);
decode the 2 PNGs to uint8 tensors; stack the batch — using the dataset's own functions, then the end-to-end
pairs/s of `pair_loader` in the main process (num_workers 0) and with one spawned worker (num_workers 1; its
start-up apart), the worker with other prefetch factors, the copy into shared memory a worker makes to send
each batch, and (on CUDA) the pin_memory copy. Normalising to float is not a worker stage: main_3dident does
it on the training device (`normalise_images`); it is timed apart, on CUDA when present, else on the CPU.
Prints the stage shares, pairs/s per worker and an estimate of the workers a GPU step of --gpu-step-ms needs.

Padding: the snap costs what the index size makes it cost (250 000 renders as released), so the folder
holds --index-size latents: the --renders rendered ones plus random ones whose images are hard links
to the renders (image i shows render i mod --renders). Decoding reads the same --renders files again
and again, from the page cache; a real 250 000-image folder is read from disk until cached.

    python benchmarks/bench_3dident_loader.py --renders 512 --size 224 --batch-size 512 --gpu-step-ms 150
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets.faiss_index import search_pairs  # noqa: E402
from datasets.threedident_dataset import (IMAGE_MEAN, IMAGE_STD, ThreeDIdentDataset, image_name,  # noqa: E402
                                          load_image, normalise_images, pair_loader)
from datasets.threedident_latents import build_latent_space, select_columns  # noqa: E402
from training_utils import atomic_write  # noqa: E402

TOOLS = str(Path(__file__).resolve().parents[1] / "tools" / "3dident")
generate_latents = importlib.import_module("tools.3dident.generate_latents")
sys.path.insert(0, TOOLS)  # render_dataset imports `renderer` from its own folder
render_dataset = importlib.import_module("tools.3dident.render_dataset")
sys.path.remove(TOOLS)

STAGES = ("draw z, z~", "faiss snap", "PNG decode", "stack")  # a worker's work per batch


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Pairs/s per worker of the 3DIdent pair stream, by stage.")
    parser.add_argument("--scratch", default="runs/bench_3dident_loader",
                        help="Folder for the rendered images (reused when already there).")
    parser.add_argument("--renders", type=int, default=512, help="Images rendered (~15 images/s at 224 px, 1 thread).")
    parser.add_argument("--size", type=int, default=224, help="Image side in pixels (224 as released).")
    parser.add_argument("--index-size", type=int, default=250000,
                        help="Latents in the faiss index (250000 as released; 0 = only the renders).")
    parser.add_argument("--batch-size", type=int, default=512, help="Pairs per batch (512 as in the paper).")
    parser.add_argument("--batches", type=int, default=3, help="Batches timed per measurement.")
    parser.add_argument("--prefetch-factors", type=int, nargs="*", default=[4],
                        help="Prefetch factors tried with one worker besides the default 2.")
    parser.add_argument("--gpu-step-ms", type=float, default=150.0,
                        help="Training step time on the GPU to feed (150 ms: rn18 at batch 512).")
    parser.add_argument("--approximate", action="store_true", help="IVF1024_HNSW32 index instead of exact.")
    parser.add_argument("--faiss-threads", type=int, default=1,
                        help="faiss OpenMP threads per process (1 here; main_3dident's default is 16).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads of the main process (1).")
    return parser


def prepare_folder(scratch: str | os.PathLike, renders: int, size: int, index_size: int = 0) -> Path:
    """A 3DIdent folder of max(renders, index_size) latents whose first `renders` images are rendered at
    `size` px (under scratch/renders-<size>px-<renders>) and the others hard links to them; reused."""
    rendered = Path(scratch) / f"renders-{size}px-{renders}"
    if not (rendered / "raw_latents.npy").is_file() or len(np.load(rendered / "raw_latents.npy")) != renders:
        generate_latents.main([str(rendered), "--n", str(renders), "--seed", "0"])
    start = time.perf_counter()
    if n := render_dataset.render_folder(rendered, size):
        print(f"rendered {n} images of {size} px in {time.perf_counter() - start:.1f} s into {rendered}")
    if index_size <= renders:
        return rendered
    padded = Path(scratch) / f"index-{size}px-{renders}-{index_size}"
    images = padded / "images"
    images.mkdir(parents=True, exist_ok=True)
    present = set(os.listdir(images))
    for i in range(index_size):
        if (name := image_name(i, index_size)) not in present:
            source = rendered / "images" / image_name(i % renders, renders)
            try:
                os.link(source, images / name)
            except OSError:  # a file system without hard links
                os.symlink(source.resolve(), images / name)
    if not (padded / "raw_latents.npy").is_file():
        extra = generate_latents.sample_raw_latents(index_size - renders, np.random.default_rng(1))
        raw = np.concatenate([np.load(rendered / "raw_latents.npy"), extra]).astype(np.float32)
        atomic_write(padded / "raw_latents.npy", lambda f: np.save(f, raw))
    return padded


def open_stream(folder: Path, batch_size: int, approximate: bool = False, faiss_threads: int = 1) -> ThreeDIdentDataset:
    """The pair stream main_3dident opens on the released (box, 10-column) data with its default flags."""
    layout = select_columns(non_periodic=True)
    space = build_latent_space(layout, "l2", sigma=0.1)
    return ThreeDIdentDataset(folder, space, batch_size, layout.columns, layout.file_width, approximate,
                              load_images=True, faiss_threads=faiss_threads, seed=0)


def stage_seconds(data: ThreeDIdentDataset, batches: int) -> dict[str, float]:
    """Seconds per pair of each stage of a batch, timed apart: the calls of `sample_indices` (latent draw,
    `search_pairs`) and of `_Folder.images` (`load_image`: decode to uint8 and permute; `torch.stack`)."""
    data.sample_indices()  # builds the index (as a worker does on its first batch)
    total = dict.fromkeys(STAGES, 0.0)
    for _ in range(batches):
        t0 = time.perf_counter()
        z = data.latent_space.sample_marginal(data.batch_size, "cpu")
        z_tilde = data.latent_space.sample_conditional(z, data.batch_size, "cpu")
        t1 = time.perf_counter()
        idx, idx_tilde = search_pairs(data._index, z.numpy(), z_tilde.numpy())
        total["draw z, z~"] += t1 - t0
        total["faiss snap"] += time.perf_counter() - t1
        for indices in (idx, idx_tilde):
            t0 = time.perf_counter()
            images = [load_image(data.folder.paths[i]) for i in indices]
            total["PNG decode"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            torch.stack(images)
            total["stack"] += time.perf_counter() - t0
    return {stage: seconds / (batches * data.batch_size) for stage, seconds in total.items()}


def normalise_seconds(batch: torch.Tensor, batches: int, device: torch.device) -> float:
    """Seconds per image of main_3dident's device-side step: copy the uint8 batch to `device`, normalise it."""
    def step() -> None:
        normalise_images(batch.to(device), IMAGE_MEAN, IMAGE_STD)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up (CUDA context, kernels)
    start = time.perf_counter()
    for _ in range(batches):
        step()
    return (time.perf_counter() - start) / (batches * len(batch))


def loader_rate(loader: DataLoader, batch_size: int, batches: int) -> tuple[float, float]:
    """(seconds to the first batch, pairs/s over the next `batches` batches) of a fresh iterator."""
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * batch_size / (time.perf_counter() - first)
    del it  # shuts the workers down
    return first - start, rate


def measure(folder: Path, batch_size: int, batches: int, prefetch_factors=(4,), approximate: bool = False,
            faiss_threads: int = 1) -> dict:
    """Stage times and loader rates of the pair stream over `folder` (see the module docstring).

    Returns {"stage_s": seconds per pair by stage, "shares": their fractions of the sum,
    "rates": pairs/s by configuration, "startup_s": seconds to the first batch by configuration,
    "handoff_s": seconds per pair a worker spends copying a batch into shared memory to send it,
    "pin_s": seconds per pair to pin a batch (None without CUDA), "normalise_s": seconds per pair of the copy to
    the training device and `normalise_images` there, "normalise_device": that device (cuda, else cpu)}."""
    def stream() -> ThreeDIdentDataset:  # a fresh one per loader: the faiss index is built where it searches
        return open_stream(folder, batch_size, approximate, faiss_threads)

    data = stream()
    stage_s = stage_seconds(data, batches)
    total = sum(stage_s.values())
    rates, startup = {"stages summed (main process)": 1.0 / total}, {}
    configs = {"main process (num_workers=0)": pair_loader(data, 0),
               "1 worker (num_workers=1, prefetch_factor=2)": pair_loader(stream(), 1)}
    for factor in prefetch_factors:  # pair_loader's arguments with another prefetch factor
        configs[f"1 worker (num_workers=1, prefetch_factor={factor})"] = DataLoader(
            stream(), batch_size=None, num_workers=1, multiprocessing_context="spawn", prefetch_factor=factor)
    for name, loader in configs.items():
        startup[name], rates[name] = loader_rate(loader, batch_size, batches)
    batch = next(iter(pair_loader(data, 0)))
    handoff = 0.0
    for _ in range(batches):  # what a worker's queue does to each batch it sends (torch's ForkingPickler)
        copies = [t.clone() for t in batch]
        start = time.perf_counter()
        [t.share_memory_() for t in copies]
        handoff += time.perf_counter() - start
    del copies
    pin_s = None
    if torch.cuda.is_available():  # main_3dident pins on CUDA: the pin thread copies each batch once
        start = time.perf_counter()
        for _ in range(batches):
            [t.pin_memory() for t in batch]
        pin_s = (time.perf_counter() - start) / (batches * batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return {"stage_s": stage_s, "shares": {k: v / total for k, v in stage_s.items()}, "rates": rates,
            "startup_s": startup, "handoff_s": handoff / (batches * batch_size), "pin_s": pin_s,
            "normalise_s": 2 * normalise_seconds(batch[2], batches, device), "normalise_device": device.type}


def workers_needed(pairs_per_s_per_worker: float, batch_size: int, gpu_step_ms: float) -> tuple[float, int]:
    """(pairs/s a GPU taking `gpu_step_ms` per batch consumes, workers to supply it assuming linear scaling)."""
    demand = batch_size / (gpu_step_ms / 1000.0)
    return demand, math.ceil(demand / pairs_per_s_per_worker)


def main() -> None:
    args = get_args_parser().parse_args()
    torch.set_num_threads(args.threads)
    folder = prepare_folder(args.scratch, args.renders, args.size, args.index_size)
    n_index = max(args.renders, args.index_size)
    print(f"folder {folder}: {args.renders} renders of {args.size} px, index of {n_index} latents "
          f"({'approximate' if args.approximate else 'exact'}); batch {args.batch_size} pairs, {args.batches} "
          f"batches per measurement; faiss threads {args.faiss_threads}, torch threads {args.threads}, "
          f"{os.cpu_count()} CPUs")
    result = measure(folder, args.batch_size, args.batches, args.prefetch_factors, args.approximate,
                     args.faiss_threads)
    print("stage (per pair = 2 images)   ms/pair   share")
    for stage, seconds in result["stage_s"].items():
        print(f"  {stage:<27} {seconds * 1e3:8.3f}  {result['shares'][stage]:6.1%}")
    print(f"  {'sum':<27} {sum(result['stage_s'].values()) * 1e3:8.3f}")
    print("pairs/s (one process each)            pairs/s   first batch after")
    for name, rate in result["rates"].items():
        first = result["startup_s"].get(name)
        print(f"  {name:<44} {rate:8.1f}   {'' if first is None else f'{first:.1f} s'}")
    print(f"  worker hand-off: share_memory_() copy of each batch, {result['handoff_s'] * 1e3:.3f} ms/pair "
          f"(paid in workers only, on top of the stages)")
    if result["pin_s"] is not None:
        print(f"  pin_memory copy in the main process: {result['pin_s'] * 1e3:.3f} ms/pair "
              f"({1 / result['pin_s']:.0f} pairs/s, one thread for all workers)")
    else:
        print("  pin_memory: no CUDA here, not measured (main_3dident passes pin_memory=True on CUDA)")
    print(f"  device side (main process, not a worker stage): copy + normalise_images on "
          f"{result['normalise_device']}, {result['normalise_s'] * 1e3:.3f} ms/pair")
    per_worker = result["rates"]["1 worker (num_workers=1, prefetch_factor=2)"]
    demand, workers = workers_needed(per_worker, args.batch_size, args.gpu_step_ms)
    print(f"ESTIMATE (assumes workers scale linearly, one CPU core each, + the main process): a GPU step of "
          f"{args.gpu_step_ms:g} ms at batch {args.batch_size} consumes {demand:.0f} pairs/s = "
          f"{demand / per_worker:.1f} x one worker's {per_worker:.0f} pairs/s -> --workers {workers}")


if __name__ == "__main__":
    main()
