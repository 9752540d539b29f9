"""Per-channel mean and std of the images of a folder (values in [0, 1]), the constants used to
normalise 3DIdent images (released data: mean (0.3292, 0.3278, 0.3215), std (0.0778, 0.0776, 0.0771)).
Accumulates sums in float64 image by image, so any folder size fits in memory.

    python tools/3dident/image_stats.py data/3dident/train/images
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Per-channel mean/std of the PNG images in a folder.")
    parser.add_argument("folder", help="Image folder, e.g. data/3dident/train/images.")
    parser.add_argument("--max-images", type=int, default=None,
                        help="Use only the first N images in name order (e.g. 10000 for a quick estimate).")
    return parser


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
    folder = Path(args.folder)
    if not folder.is_dir():
        raise SystemExit(f"error: image folder not found: {folder}")
    paths = sorted(folder / name for name in os.listdir(folder) if name.endswith(".png"))[:args.max_images]
    if not paths:
        raise SystemExit(f"error: no .png images in {folder}")
    mean, std = channel_stats(paths)
    print(f"images: {len(paths)}")
    print("mean: (" + ", ".join(f"{v:.4f}" for v in mean) + ")")
    print("std: (" + ", ".join(f"{v:.4f}" for v in std) + ")")


if __name__ == "__main__":
    main()
