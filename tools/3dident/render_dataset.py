"""Render `images/<zero-padded index>.png` of a 3DIdent-format folder (paper §5.3) from its `latents.npy`
with the batched PyTorch renderer (no Blender); with --masks also `masks/<index>.png`, the object's silhouette
(8-bit grey: the share of each pixel the object covers, 255 on the object, 0 elsewhere), usable as segmentation
labels. Renders only the images that are missing or damaged
(unreadable, truncated, or not --size pixels square: checked by PIL's header and chunk checksums, without
decoding), so an interrupted run continues where it stopped; each PNG is written to a temporary name first.
`.images_latents.sha1` (beside images/) records the latents the images were rendered from: when latents.npy
has changed since (new --n or --seed in generate_latents.py), every image is stale and is rendered again, and
PNGs named for no index of the new latents are removed.

    python tools/3dident/render_dataset.py data/3dident/train --size 224 --device cuda [--masks]
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_dataset import image_name  # noqa: E402
from distributed_utils import usable_cpus  # noqa: E402
from io_utils import atomic_write  # noqa: E402
from renderer import render_with_masks  # noqa: E402

STAMP = ".images_latents.sha1"  # beside images/: the digest of the latents.npy the images were rendered from


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Render the images of a 3DIdent-format folder from latents.npy.")
    parser.add_argument("folder", help="Folder with latents.npy (from generate_latents.py).")
    parser.add_argument("--masks", action="store_true",
                        help="Also write masks/<index>.png: the object's silhouette, a segmentation label per image.")
    add_render_flags(parser)
    return parser


def add_render_flags(parser: argparse.ArgumentParser) -> None:
    """--size, --batch-size, --device and --threads of the renderer (also render_pairs.py's)."""
    parser.add_argument("--size", type=int, default=224, help="Image side in pixels (224 as released; 64 for tests).")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="Scenes rendered at once (64 on a CPU, 256-1024 on a GPU).")
    parser.add_argument("--device", default="cpu", help="Torch device: cpu or cuda.")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch in each rendering process (1; 0 = torch's default).")
    parser.add_argument("--processes", type=int, default=0,
                        help="Rendering processes on the CPU (0: one per CPU this process may use, about twice "
                             "as fast as threads on 2 cores; 1 with --device cuda).")


def render_processes(args: argparse.Namespace) -> int:
    """How many rendering processes --processes asks for (one per usable CPU for 0; one on a GPU)."""
    if args.processes < 0:
        raise SystemExit(f"error: --processes must be 0 (one per CPU) or more, not {args.processes}")
    return 1 if args.device != "cpu" else args.processes or usable_cpus()


def save_png(image: np.ndarray, path: Path) -> None:
    atomic_write(path, lambda f: Image.fromarray(image).save(f, format="PNG"))


def image_ok(path: Path, size: int) -> bool:
    """Whether `path` is a complete, readable PNG of size×size pixels (PIL reads the header and verifies
    every chunk's checksum; nothing is decoded, so this costs a read of the file)."""
    try:
        with Image.open(path) as image:
            if image.size != (size, size):
                return False
            image.verify()
        return True
    except (OSError, SyntaxError):  # what PIL raises for unreadable, truncated or corrupt files
        return False


def latents_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def stale_images(folder: Path, present: set[str], names: list[str], digest: str) -> list[str]:
    """The PNGs among `present` (in folder/images) not rendered from the latents whose digest is given: all of
    them when the folder's stamp names other latents; else those named for no index (a folder stamped before
    it kept them)."""
    pngs = {name for name in present if name.endswith(".png")}
    stamp = folder / STAMP
    if stamp.is_file() and stamp.read_text().strip() != digest:
        return sorted(pngs)
    return sorted(pngs - set(names))


def outdated(folder: Path, kind: str, names: list[str], digest: str, size: int) -> set[int]:
    """Indices whose PNG in folder/<kind> (images or masks) is missing, stale or damaged (`image_ok` false),
    saying how many were stale or damaged; stale PNGs are removed first."""
    pngs = folder / kind
    pngs.mkdir(exist_ok=True)
    present = set(os.listdir(pngs))
    stale = stale_images(folder, present, names, digest)
    if stale:
        print(f"removing {len(stale)} {kind} rendered from other latents (latents.npy changed; first: {stale[0]})")
        for name in stale:
            (pngs / name).unlink()
        present -= set(stale)
    damaged = [i for i, name in enumerate(names) if name in present and not image_ok(pngs / name, size)]
    if damaged:
        print(f"re-rendering {len(damaged)} damaged {kind} (unreadable, truncated or not {size}x{size} px; "
              f"first: {names[damaged[0]]})")
    return set(damaged) | {i for i, name in enumerate(names) if name not in present}


def render_shard(folder: Path, scenes: list[int], todo: dict[str, set[int]], size: int, batch_size: int,
                 device: str, threads: int) -> None:
    """Render `scenes` (indices of folder's latents) in batches and write the files `todo` asks for."""
    if threads > 0:
        torch.set_num_threads(threads)
    latents = np.load(folder / "latents.npy")
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start:start + batch_size]
        pixels, coverage = render_with_masks(torch.from_numpy(latents[chunk]).to(device), size)
        outputs = {"images": pixels.cpu().numpy(), "masks": (coverage * 255 + 0.5).to(torch.uint8).cpu().numpy()}
        for kind, wanted in todo.items():
            for i, image in zip(chunk, outputs[kind]):
                if i in wanted:
                    save_png(image, folder / kind / image_name(i, len(latents)))


def render_folder(folder: str | os.PathLike, size: int = 224, batch_size: int = 64, device: str = "cpu",
                  masks: bool = False, processes: int = 1, threads: int = 0) -> int:
    """Render every missing, stale or damaged image (and, with `masks`, object mask) of `folder`, split over
    `processes` rendering processes of `threads` torch threads each (0: torch's default); returns how many
    scenes were rendered."""
    folder = Path(folder)
    n_scenes = len(np.load(folder / "latents.npy", mmap_mode="r"))
    names = [image_name(i, n_scenes) for i in range(n_scenes)]
    digest = latents_digest(folder / "latents.npy")
    todo = {kind: outdated(folder, kind, names, digest, size) for kind in ("images", "masks")[:1 + masks]}
    (folder / STAMP).write_text(digest + "\n")  # before rendering: the files written from now on are these latents'
    scenes = sorted(set().union(*todo.values()))
    shards = [scenes[k::processes] for k in range(processes) if scenes[k::processes]]
    if len(shards) <= 1:
        render_shard(folder, scenes, todo, size, batch_size, device, threads)
        return len(scenes)
    with ProcessPoolExecutor(len(shards), mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(render_shard, folder, shard, todo, size, batch_size, device, threads) for shard in shards]
        for job in jobs:
            job.result()  # a worker's error is raised here
    return len(scenes)



def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if not (Path(args.folder) / "latents.npy").is_file():
        raise SystemExit(f"error: {Path(args.folder) / 'latents.npy'} not found (run generate_latents.py first)")
    start = time.perf_counter()
    n = render_folder(args.folder, args.size, args.batch_size, args.device, args.masks, render_processes(args),
                      args.threads)
    seconds = time.perf_counter() - start
    print(f"rendered {n} images of {args.size}x{args.size} in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f} images/s)")


if __name__ == "__main__":
    main()
