"""Render `images/<zero-padded index>.png` of a 3DIdent-format folder (paper §5.3) from its `latents.npy`
with the batched PyTorch renderer (no Blender). Renders only the images that are missing or damaged
(unreadable, truncated, or not --size pixels square: checked by PIL's header and chunk checksums, without
decoding), so an interrupted run continues where it stopped; each PNG is written to a temporary name first.
`.images_latents.sha1` (beside images/) records the latents the images were rendered from: when latents.npy
has changed since (new --n or --seed in generate_latents.py), every image is stale and is rendered again, and
PNGs named for no index of the new latents are removed.

    python tools/3dident/render_dataset.py data/3dident/train --size 224 --device cuda
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_dataset import image_name  # noqa: E402
from io_utils import atomic_write  # noqa: E402
from renderer import render  # noqa: E402

STAMP = ".images_latents.sha1"  # beside images/: the digest of the latents.npy the images were rendered from


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Render the images of a 3DIdent-format folder from latents.npy.")
    parser.add_argument("folder", help="Folder with latents.npy (from generate_latents.py).")
    add_render_flags(parser)
    return parser


def add_render_flags(parser: argparse.ArgumentParser) -> None:
    """--size, --batch-size, --device and --threads of the renderer (also render_pairs.py's)."""
    parser.add_argument("--size", type=int, default=224, help="Image side in pixels (224 as released; 64 for tests).")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="Scenes rendered at once (64 on a CPU, 256-1024 on a GPU).")
    parser.add_argument("--device", default="cpu", help="Torch device: cpu or cuda.")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (1 is fastest on a small shared CPU; 0 = torch's default).")


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


def render_folder(folder: str | os.PathLike, size: int = 224, batch_size: int = 64, device: str = "cpu") -> int:
    """Render every missing, stale or damaged (`image_ok` false) image of `folder`, saying how many were
    stale or damaged; returns how many were rendered."""
    folder = Path(folder)
    scene = np.load(folder / "latents.npy")
    images = folder / "images"
    images.mkdir(exist_ok=True)
    names = [image_name(i, len(scene)) for i in range(len(scene))]
    digest = latents_digest(folder / "latents.npy")
    present = set(os.listdir(images))
    stale = stale_images(folder, present, names, digest)
    if stale:
        print(f"removing {len(stale)} images rendered from other latents (latents.npy changed; first: {stale[0]})")
        for name in stale:
            (images / name).unlink()
        present -= set(stale)
    damaged = [i for i, name in enumerate(names) if name in present and not image_ok(images / name, size)]
    if damaged:
        print(f"re-rendering {len(damaged)} damaged images (unreadable, truncated or not {size}x{size} px; "
              f"first: {names[damaged[0]]})")
    (folder / STAMP).write_text(digest + "\n")  # before rendering: the images written from now on are these latents'
    todo = sorted(damaged + [i for i, name in enumerate(names) if name not in present])
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        pixels = render(torch.from_numpy(scene[chunk]).to(device), size).cpu().numpy()
        for i, image in zip(chunk, pixels):
            save_png(image, images / names[i])
    return len(todo)


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if not (Path(args.folder) / "latents.npy").is_file():
        raise SystemExit(f"error: {Path(args.folder) / 'latents.npy'} not found (run generate_latents.py first)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    n = render_folder(args.folder, args.size, args.batch_size, args.device)
    seconds = time.perf_counter() - start
    print(f"rendered {n} images of {args.size}x{args.size} in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f} images/s)")


if __name__ == "__main__":
    main()
