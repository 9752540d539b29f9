"""Feeding a GPU with the 3DIdent pair stream (paper §5.3): how many data workers does a training step need, reading
PNGs or the image cache (main_3dident.py --image-cache)? And what does the cache save the CPU recipe per step?

Measures in one run and one process, per image size of --sizes, on a small folder rendered with tools/3dident
(reused when it is already there) and padded to --index-size latents, both ways of reading the images (PNG: decode
each; cache: rows of the folder's image cache, built here first): the time per pair of each stage the pair stream
does per batch — draw z, z̃; snap both to their nearest renders (faiss, batched as the dataset does); read the 2B
images (`_Folder.images`) — then the end-to-end pairs/s of `pair_loader` in the main process (num_workers 0) and
with one spawned worker (num_workers 1; its start-up apart), the best of --rounds alternating measurements. Prints
each cache/PNG ratio and the workers a GPU step of --gpu-step-ms needs either way; once per run, the copy into shared
memory a worker makes to send each batch, (on CUDA) the pin_memory copy, and main_3dident's device-side normalisation
(on CUDA when present, else on the CPU).
Last, the CPU recipe (docs/3dident.md: --encoder conv, batch 256, --workers 1, at the smallest size of --sizes):
main_3dident's seconds per step without and with the cache, the same seed and batches (the losses are compared),
alternating over --recipe-rounds rounds.

Padding: the snap costs what the index size makes it cost, so the folder holds --index-size latents: the --renders
rendered ones plus random ones whose images are hard links to the renders (image i shows render i mod --renders).
Decoding reads the same --renders files again and again, from the page cache; the image cache holds --index-size
rows (25 000 at 224 px: 3.8 GB, within this machine's page cache; the released 250 000 would take 37.6 GB). The
snap of the released 250 000-latent index is timed apart and its extra time per pair added to both readers' worker
for the estimate at that size.

    OMP_NUM_THREADS=1 python benchmarks/bench_3dident_loader.py --sizes 64 224 --index-size 25000 --batch-size 512
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import main_3dident  # noqa: E402
from datasets.faiss_index import build_index, search_pairs  # noqa: E402
from datasets.threedident_dataset import (CACHE_FILE, IMAGE_MEAN, IMAGE_STD, ThreeDIdentDataset,  # noqa: E402
                                          build_image_cache, image_name, image_paths, normalise_images, pair_loader)
from datasets.threedident_latents import build_latent_space, select_columns  # noqa: E402
from training_utils import atomic_write  # noqa: E402

TOOLS = str(Path(__file__).resolve().parents[1] / "tools" / "3dident")
generate_latents = importlib.import_module("tools.3dident.generate_latents")
sys.path.insert(0, TOOLS)  # render_dataset imports `renderer` from its own folder
render_dataset = importlib.import_module("tools.3dident.render_dataset")
sys.path.remove(TOOLS)

STAGES = ("draw z, z~", "faiss snap", "read images")  # a worker's work per batch
READERS = {"PNG": False, "cache": True}  # reader name → the dataset's `cache` argument
ONE_WORKER = "1 worker (num_workers=1, prefetch_factor=2)"
RELEASED_INDEX = 250000  # latents of the released training folder
# docs/3dident.md's CPU recipe (the paper's row, l2_box) as main_3dident flags, without the folder and the length
RECIPE = ["--mode", "unsupervised", "--unsupervised-loss", "l2", "--non-periodical-conditional", "l2",
          "--box-constraint", "learnable", "--tau", "0.05", "--encoder", "conv", "--non-periodic-rotation-and-color",
          "--no-cuda", "--batch-size", "256", "--lr", "1e-3", "--seed", "0", "--faiss-omp-threads", "1"]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Pairs/s per worker of the 3DIdent pair stream, PNG against the "
                                                 "image cache, by stage; the CPU recipe's step with and without it.")
    parser.add_argument("--scratch", default="runs/bench_3dident_loader",
                        help="Folder for the rendered images and caches (reused when already there).")
    parser.add_argument("--renders", type=int, default=512,
                        help="Images rendered per size (512; ~15 images/s at 224 px, 1 thread).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224],
                        help="Image sides in pixels (64 224: the CPU recipe's and the released).")
    parser.add_argument("--index-size", type=int, default=25000,
                        help="Latents (and cache rows) of the timed folder (25000: a 3.8 GB cache at 224 px; "
                             "0 = only the renders).")
    parser.add_argument("--batch-size", type=int, default=512, help="Pairs per batch (512 as in the paper).")
    parser.add_argument("--batches", type=int, default=3, help="Batches timed per measurement (3).")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Measurements per reader, alternating PNG and cache; the best counts (3: the machine's "
                             "load varies).")
    parser.add_argument("--prefetch-factors", type=int, nargs="*", default=[],
                        help="Prefetch factors tried with one worker besides the default 2 (none).")
    parser.add_argument("--gpu-step-ms", type=float, default=150.0,
                        help="Training step time on the GPU to feed (150 ms: rn18 at batch 512).")
    parser.add_argument("--recipe-steps", type=int, default=20,
                        help="Steps per CPU-recipe run (20; 0 skips the recipe).")
    parser.add_argument("--recipe-rounds", type=int, default=2,
                        help="Rounds of the CPU recipe, each running both readers, in alternating order (2).")
    parser.add_argument("--approximate", action="store_true", help="IVF1024_HNSW32 index instead of exact.")
    parser.add_argument("--threads", type=int, default=1,
                        help="Torch and faiss threads of this process and each worker (1; main_3dident's faiss "
                             "default is 16).")
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


def open_stream(folder: Path, batch_size: int, approximate: bool = False, faiss_threads: int = 1,
                cache: bool = False) -> ThreeDIdentDataset:
    """The pair stream main_3dident opens on the released (box, 10-column) data with its default flags."""
    layout = select_columns(non_periodic=True)
    space = build_latent_space(layout, "l2", sigma=0.1)
    return ThreeDIdentDataset(folder, space, batch_size, layout.columns, layout.file_width, approximate,
                              load_images=True, faiss_threads=faiss_threads, seed=0, cache=cache)


def stage_seconds(data: ThreeDIdentDataset, batches: int) -> dict[str, float]:
    """Seconds per pair of each stage of a batch, timed apart: the calls of `sample_indices` (latent draw,
    `search_pairs`) and `_Folder.images` (PNG: decode and stack; cache: gather the rows)."""
    data.sample_indices()  # builds the index (as a worker does on its first batch)
    data.folder.images([0])  # maps the cache (as a worker does on its first batch)
    total = dict.fromkeys(STAGES, 0.0)
    for _ in range(batches):
        t0 = time.perf_counter()
        z = data.latent_space.sample_marginal(data.batch_size, "cpu")
        z_tilde = data.latent_space.sample_conditional(z, data.batch_size, "cpu")
        t1 = time.perf_counter()
        idx, idx_tilde = search_pairs(data._index, z.numpy(), z_tilde.numpy())
        t2 = time.perf_counter()
        data.folder.images(idx), data.folder.images(idx_tilde)
        total["draw z, z~"] += t1 - t0
        total["faiss snap"] += t2 - t1
        total["read images"] += time.perf_counter() - t2
    return {stage: seconds / (batches * data.batch_size) for stage, seconds in total.items()}


def snap_seconds(n_latents: int, batch_size: int, batches: int, approximate: bool = False) -> float:
    """Seconds per pair of the faiss snap (`search_pairs` of z and z̃) in an index of `n_latents` random latents."""
    rng = np.random.default_rng(0)
    index = build_index(rng.uniform(-1, 1, (n_latents, 10)).astype(np.float32), approximate)
    queries = rng.uniform(-1, 1, (2, batch_size, 10)).astype(np.float32)
    search_pairs(index, *queries)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        search_pairs(index, *queries)
    return (time.perf_counter() - start) / (batches * batch_size)


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


def measure(folder: Path, batch_size: int, batches: int, prefetch_factors=(), approximate: bool = False,
            faiss_threads: int = 1, cache: bool = False) -> dict:
    """Stage times and loader rates of the pair stream over `folder`, its images read as PNGs or (`cache`) from
    its image cache. Returns {"stage_s": seconds per pair by stage, "shares": their fractions of the sum, "rates":
    pairs/s by configuration, "startup_s": seconds to the first batch by configuration}."""
    def stream() -> ThreeDIdentDataset:  # a fresh one per loader: the faiss index is built where it searches
        return open_stream(folder, batch_size, approximate, faiss_threads, cache)

    data = stream()
    stage_s = stage_seconds(data, batches)
    total = sum(stage_s.values())
    rates, startup = {"stages summed (main process)": 1.0 / total}, {}
    configs = {"main process (num_workers=0)": pair_loader(data, 0), ONE_WORKER: pair_loader(stream(), 1)}
    for factor in prefetch_factors:  # pair_loader's arguments with another prefetch factor
        configs[f"1 worker (num_workers=1, prefetch_factor={factor})"] = DataLoader(
            stream(), batch_size=None, num_workers=1, multiprocessing_context="spawn", prefetch_factor=factor)
    for name, loader in configs.items():
        startup[name], rates[name] = loader_rate(loader, batch_size, batches)
    return {"stage_s": stage_s, "shares": {k: v / total for k, v in stage_s.items()}, "rates": rates,
            "startup_s": startup}


def best(results: list[dict]) -> dict:
    """The fastest of several `measure` results, per stage and per configuration."""
    stage_s = {stage: min(r["stage_s"][stage] for r in results) for stage in STAGES}
    total = sum(stage_s.values())
    return {"stage_s": stage_s, "shares": {k: v / total for k, v in stage_s.items()},
            "rates": {name: max(r["rates"][name] for r in results) for name in results[0]["rates"]},
            "startup_s": {name: min(r["startup_s"][name] for r in results) for name in results[0]["startup_s"]}}


def transfer_seconds(batch: tuple, batches: int) -> dict:
    """Seconds per pair of what happens to a batch after the worker made it: "handoff" (the share_memory_() copy of
    a worker's queue), "pin" (the pin_memory copy main_3dident makes on CUDA; None without CUDA) and "normalise"
    (the copy to the training device and `normalise_images` there, of x and x̃), on "device" (cuda, else cpu)."""
    n = batches * len(batch[0])
    handoff = 0.0
    for _ in range(batches):  # what a worker's queue does to each batch it sends (torch's ForkingPickler)
        copies = [t.clone() for t in batch]
        start = time.perf_counter()
        [t.share_memory_() for t in copies]
        handoff += time.perf_counter() - start
    pin = None
    if torch.cuda.is_available():  # main_3dident pins on CUDA: the pin thread copies each batch once
        start = time.perf_counter()
        for _ in range(batches):
            [t.pin_memory() for t in batch]
        pin = (time.perf_counter() - start) / n
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def step() -> None:
        normalise_images(batch[2].to(device), IMAGE_MEAN, IMAGE_STD)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up (CUDA context, kernels)
    start = time.perf_counter()
    for _ in range(batches):
        step()
    return {"handoff": handoff / n, "pin": pin, "normalise": 2 * (time.perf_counter() - start) / n,
            "device": device.type}


def workers_needed(pairs_per_s_per_worker: float, batch_size: int, gpu_step_ms: float) -> tuple[float, int]:
    """(pairs/s a GPU taking `gpu_step_ms` per batch consumes, workers to supply it assuming linear scaling)."""
    demand = batch_size / (gpu_step_ms / 1000.0)
    return demand, math.ceil(demand / pairs_per_s_per_worker)


def recipe_seconds_per_step(folder: Path, run_dir: Path, steps: int, cache: bool, workers: int = 1) -> tuple:
    """(seconds per step, the logged losses) of main_3dident's CPU recipe on `folder` for `steps` steps (`workers`
    data workers, images as PNGs or from the cache): elapsed time from the logged step 0 to step `steps`, which
    includes that step's scores (one batch of 256)."""
    argv = [*RECIPE, "--offline-dataset", str(folder), "--workers", str(workers), "--iterations", str(steps),
            "--n-log-steps", str(steps), "--n-eval-samples", "256", "--output-dir", str(run_dir),
            *(["--image-cache"] if cache else [])]
    with contextlib.redirect_stdout(io.StringIO()):
        main_3dident.main(argv)
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return (float(rows[-1]["elapsed_s"]) - float(rows[0]["elapsed_s"])) / steps, [row["loss"] for row in rows]


def report_size(args: argparse.Namespace, size: int) -> Path:
    """Build the cache of the `size`-px folder, measure both readers, print them side by side; the folder."""
    folder = prepare_folder(args.scratch, args.renders, size, args.index_size)
    n = len(np.load(folder / "raw_latents.npy", mmap_mode="r"))
    start = time.perf_counter()
    build_image_cache(folder, image_paths(folder, n), threads=args.threads)
    built = time.perf_counter() - start
    cache_gb = (folder / CACHE_FILE).stat().st_size / 1e9
    print(f"\n== {size} px: folder {folder}, {args.renders} renders, index of {n} latents "
          f"({'approximate' if args.approximate else 'exact'}); batch {args.batch_size} pairs, {args.batches} batches "
          f"per measurement, the best of {args.rounds} rounds; image cache {cache_gb:.2f} GB (ready after "
          f"{built:.1f} s)")
    rounds = {reader: [] for reader in READERS}
    for round_ in range(args.rounds):  # alternating order: a drift of the machine's load hits both readers
        for reader in (list(READERS) if round_ % 2 == 0 else list(READERS)[::-1]):
            rounds[reader].append(measure(folder, args.batch_size, args.batches, args.prefetch_factors,
                                          args.approximate, args.threads, READERS[reader]))
    result = {reader: best(results) for reader, results in rounds.items()}
    png, cached = result["PNG"], result["cache"]
    print("stage (per pair = 2 images)     PNG ms/pair  share   cache ms/pair  share")
    for stage in STAGES:
        print(f"  {stage:<29} {png['stage_s'][stage] * 1e3:8.3f}  {png['shares'][stage]:6.1%}   "
              f"{cached['stage_s'][stage] * 1e3:8.3f}  {cached['shares'][stage]:6.1%}")
    sums = {reader: sum(r["stage_s"].values()) for reader, r in result.items()}
    print(f"  {'sum':<29} {sums['PNG'] * 1e3:8.3f}           {sums['cache'] * 1e3:8.3f}")
    print("pairs/s (one process each)                        PNG    cache  cache/PNG   first batch after (PNG, cache)")
    for name in png["rates"]:
        first = "".join(f"{r['startup_s'][name]:.1f} s " for r in (png, cached) if name in r["startup_s"])
        print(f"  {name:<44} {png['rates'][name]:8.1f} {cached['rates'][name]:8.1f} "
              f"{cached['rates'][name] / png['rates'][name]:8.2f}x   {first}")
    per_worker = {reader: r["rates"][ONE_WORKER] for reader, r in result.items()}
    demand = workers_needed(1.0, args.batch_size, args.gpu_step_ms)[0]
    print(f"WORKERS for a GPU step of {args.gpu_step_ms:g} ms at batch {args.batch_size} ({demand:.0f} pairs/s; "
          f"assumes workers scale linearly, one core each, + the main process): {workers_text(per_worker, args)}")
    snap = snap_seconds(RELEASED_INDEX, args.batch_size, args.batches, args.approximate)
    extra = snap - cached["stage_s"]["faiss snap"]
    at_released = {reader: 1.0 / (1.0 / rate + extra) for reader, rate in per_worker.items()}
    print(f"ESTIMATE with the snap of the released {RELEASED_INDEX}-latent index (+{extra * 1e3:.3f} ms/pair, timed "
          f"here): one worker PNG {at_released['PNG']:.0f}, cache {at_released['cache']:.0f} pairs/s "
          f"({at_released['cache'] / at_released['PNG']:.2f}x); {workers_text(at_released, args)}")
    return folder


def workers_text(per_worker: dict[str, float], args: argparse.Namespace) -> str:
    """"PNG 9.3 -> --workers 10, cache …": the workers each reader needs at its rate of one worker's pairs/s."""
    parts = []
    for reader, rate in per_worker.items():
        demand, workers = workers_needed(rate, args.batch_size, args.gpu_step_ms)
        parts.append(f"{reader} {demand / rate:.1f} -> --workers {workers}")
    return ", ".join(parts)


def report_recipe(args: argparse.Namespace, folder: Path, size: int) -> None:
    """main_3dident's CPU recipe on `folder`, both readers per round (alternating order): the ratio of their
    seconds per step, and whether they logged the same losses."""
    seconds = {reader: [] for reader in READERS}
    losses = {}
    for round_ in range(args.recipe_rounds):
        for reader in (list(READERS) if round_ % 2 == 0 else list(READERS)[::-1]):
            run_dir = Path(args.scratch) / f"recipe-{size}px" / f"{reader}-{round_}"
            step_s, losses[reader] = recipe_seconds_per_step(folder, run_dir, args.recipe_steps, READERS[reader])
            seconds[reader].append(step_s)
    mean = {reader: float(np.mean(values)) for reader, values in seconds.items()}
    print(f"\nCPU RECIPE ({size} px, --encoder conv, batch 256, --workers 1, {args.recipe_rounds} rounds x "
          f"{args.recipe_steps} steps per reader): seconds per step cache / PNG = {mean['cache'] / mean['PNG']:.3f} "
          f"(PNG {mean['PNG']:.3f}, cache {mean['cache']:.3f} s/step; per round: "
          + ", ".join(f"{c / p:.3f}" for p, c in zip(seconds["PNG"], seconds["cache"]))
          + f"); same losses: {'yes' if losses['PNG'] == losses['cache'] else 'NO'}")


def main() -> None:
    args = get_args_parser().parse_args()
    torch.set_num_threads(args.threads)
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} torch/faiss thread(s) per process")
    folders = {size: report_size(args, size) for size in args.sizes}
    transfer = transfer_seconds(next(iter(open_stream(folders[max(args.sizes)], args.batch_size))), args.batches)
    print(f"\nafter the worker, at {max(args.sizes)} px: share_memory_() hand-off "
          f"{transfer['handoff'] * 1e3:.3f} ms/pair (in the worker, on top of the stages); "
          + (f"pin_memory {transfer['pin'] * 1e3:.3f} ms/pair (main process); " if transfer["pin"] is not None
             else "pin_memory not measured (no CUDA; main_3dident pins on CUDA); ")
          + f"copy + normalise_images on {transfer['device']} {transfer['normalise'] * 1e3:.3f} ms/pair (main process)")
    if args.recipe_steps:
        report_recipe(args, folders[min(args.sizes)], min(args.sizes))


if __name__ == "__main__":
    main()
