"""Per-channel mean and std of the images of a 3DIdent folder (values in [0, 1]), the constants that
normalise its images (paper §5.3; released data: mean (0.3292, 0.3278, 0.3215), std (0.0778, 0.0776, 0.0771)).
Prints them and writes them, atomically, to `<dataset folder>/image_stats.json` ({"mean", "std", "images"}),
the file `main_3dident.py --image-normalisation folder` reads. Accumulates sums in float64 image by image,
so any folder size fits in memory.

    python tools/3dident/image_stats.py data/3dident/train

The argument is the dataset folder (raw_latents.npy and images/) or, as before, its images/ folder; either
way the file goes to the dataset folder.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_dataset import STATS_FILE, write_image_stats  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Per-channel mean/std of the PNG images of a 3DIdent folder, "
                                                 f"printed and written to <folder>/{STATS_FILE}.")
    parser.add_argument("folder", help="Dataset folder, e.g. data/3dident/train (its images/ folder is accepted too).")
    parser.add_argument("--max-images", type=int, default=None,
                        help="Use only the first N images in name order (e.g. 10000 for a quick estimate).")
    return parser


def image_folder(folder: Path) -> Path:
    """The images/ folder of dataset folder `folder`, or `folder` itself when it holds the images."""
    return folder / "images" if (folder / "images").is_dir() else folder


def channel_stats(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std per RGB channel over all pixels of all images."""
    total, total_sq, count = np.zeros(3), np.zeros(3), 0
    for path in paths:
        with Image.open(path) as image:
            x = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
        total += x.sum(0)
        total_sq += (x**2).sum(0)
        count += len(x)
    mean = total / count
    return mean, np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    images = image_folder(Path(args.folder))
    if not images.is_dir():
        raise SystemExit(f"error: image folder not found: {images}")
    paths = sorted(images / name for name in os.listdir(images) if name.endswith(".png"))[:args.max_images]
    if not paths:
        raise SystemExit(f"error: no .png images in {images}")
    mean, std = channel_stats(paths)
    output = images.parent / STATS_FILE
    write_image_stats(output, mean, std, len(paths))
    print(f"images: {len(paths)}")
    print("mean: (" + ", ".join(f"{v:.4f}" for v in mean) + ")")
    print("std: (" + ", ".join(f"{v:.4f}" for v in std) + ")")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
