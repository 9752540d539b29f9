"""How much does each latent move the image? The RMS pixel change (pixel values in [0, 1]) per unit of each raw
latent, by central differences of the renderer at scenes drawn uniformly from the latent box: the image signal
that the encoder has to find each latent by (docs/3dident.md, "Where the rotations die"). With --strip, also a
picture of what each latent does: one row per latent, swept over its range with the others at the box's centre.

    python tools/3dident/sensitivity.py --n 256 --size 64 --strip results/3dident_cpu/latent_sweeps.png

Raw latents live in [-1, 1] (generate_latents.py maps them to the scene); the scenes are drawn from
[-1 + δ, 1 − δ] so that both differences stay in the box.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_latents import N_BOX_COLUMNS  # noqa: E402
from generate_latents import raw_to_scene  # noqa: E402
from renderer import render  # noqa: E402
from training_utils import atomic_write  # noqa: E402

NAMES = ("x", "y", "z", "α", "β", "γ", "spotlight angle", "object hue", "spotlight hue", "background hue")
Renderer = Callable[[torch.Tensor, int], torch.Tensor]  # scenes (B, 10) → uint8 images (B, size, size, 3)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="RMS pixel change per unit of each raw 3DIdent latent.")
    parser.add_argument("--n", type=int, default=256, help="Scenes to average over (256: ±0.01 on the means).")
    parser.add_argument("--size", type=int, default=64, help="Image side in pixels (64, the CPU table's).")
    parser.add_argument("--delta", type=float, default=0.05,
                        help="Half-step δ of the central differences, in raw units (0.05 of the range [-1, 1]).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the scenes.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads (1).")
    parser.add_argument("--strip", default=None, metavar="PNG",
                        help="Also write the latent sweeps to this PNG (one row per latent, --columns renders).")
    parser.add_argument("--columns", type=int, default=7, help="Renders per sweep of --strip, from -1 to 1 (7).")
    return parser


def sensitivity(raw: np.ndarray, size: int, delta: float, renderer: Renderer = render) -> np.ndarray:
    """(10, n) RMS over pixels and channels of (x(z + δe_i) − x(z − δe_i)) / 2δ, pixels in [0, 1]: the image's
    rate of change along raw latent i at each of the n scenes raw (n, 10)."""
    def images(r: np.ndarray) -> torch.Tensor:
        return renderer(torch.from_numpy(raw_to_scene(r)), size).double().flatten(1) / 255.0

    rates = []
    for i in range(raw.shape[1]):
        step = np.zeros(raw.shape[1])
        step[i] = delta
        rates.append(((images(raw + step) - images(raw - step)) / (2 * delta)).square().mean(1).sqrt().numpy())
    return np.stack(rates)


def sweeps(size: int, columns: int, renderer: Renderer = render) -> np.ndarray:
    """(10·size, columns·size, 3) uint8: row i renders raw latent i at `columns` values from -1 to 1, the other
    latents at 0."""
    raw = np.zeros((N_BOX_COLUMNS, columns, N_BOX_COLUMNS))
    for i in range(N_BOX_COLUMNS):
        raw[i, :, i] = np.linspace(-1, 1, columns)
    images = renderer(torch.from_numpy(raw_to_scene(raw.reshape(-1, N_BOX_COLUMNS))), size).numpy()
    return images.reshape(N_BOX_COLUMNS, columns, size, size, 3).transpose(0, 2, 1, 3, 4).reshape(
        N_BOX_COLUMNS * size, columns * size, 3)


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if min(args.n, args.size, args.columns, args.threads) < 1 or not 0 < args.delta < 1:
        raise SystemExit("error: --n, --size, --columns and --threads must be positive and --delta in (0, 1)")
    torch.set_num_threads(args.threads)
    raw = np.random.default_rng(args.seed).uniform(-1 + args.delta, 1 - args.delta, (args.n, N_BOX_COLUMNS))
    rates = sensitivity(raw, args.size, args.delta)
    print(f"RMS pixel change per unit raw latent, {args.n} scenes of {args.size} px, δ {args.delta}, "
          f"seed {args.seed}: mean (median)")
    for name, rate in zip(NAMES, rates):
        print(f"{name:16s} {rate.mean():.3f} ({np.median(rate):.3f})")
    if args.strip:
        picture = Image.fromarray(sweeps(args.size, args.columns))
        try:
            atomic_write(Path(args.strip), lambda f: picture.save(f, format="PNG"))
        except OSError as e:
            raise SystemExit(f"error: cannot write {args.strip}: {e.strerror or e}")
        print(f"wrote {args.strip}: rows {', '.join(NAMES)}; columns from -1 to 1")


if __name__ == "__main__":
    main()
