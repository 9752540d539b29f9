"""Measure our 3DIdent scene against reference renders of the original one: per-latent sensitivity, image
statistics and object silhouettes (docs/3dident.md, "The scene").

REF_DIR holds renders in this layout (the original scene's, rendered with Blender, is kept outside the project):
`raw_latents.npy` (N, 10) in [-1, 1]; `sweep_index.npy` (S, 3) whose rows (base, latent, value) say that the
first S renders are sweeps: for each base point and latent, renders of that latent at increasing values with the
others held; the remaining N − S renders are random scenes; `images/NNN.png` (RGB or RGBA) and `masks/NNN.png`
(the object white on black). This tool renders REF_DIR's raw latents with our scene and prints, side by side:
- sensitivity: the mean |Δ pixel| (values in [0, 1]) between neighbouring renders of every sweep, per latent;
- luminance (0.299 R + 0.587 G + 0.114 B) over the random scenes: the mean, and the mean within-image std;
- the silhouette IoU of our object coverage (≥ 0.5) and the reference mask (≥ 0.5) over the random scenes;
and checks the fidelity targets: each of x, y, z, α, β, γ and the spotlight angle within a factor 1.5 of the
reference, luminance mean within 0.05, within-image std within 0.03, median IoU ≥ 0.80. The hue columns are
printed but not targets (our hue mapping is a documented choice, generate_latents.py). Exit status 1 when a
target is missed.

    python tools/3dident/compare_reference.py ../shared/research/3dident-reference --out results/3dident_scene
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_dataset import image_name  # noqa: E402
from generate_latents import raw_to_scene  # noqa: E402
from render_dataset import save_png  # noqa: E402
from renderer import render_with_masks  # noqa: E402
from io_utils import atomic_write  # noqa: E402

NAMES = ("x", "y", "z", "α", "β", "γ", "spot angle", "obj hue", "spot hue", "bg hue")
TARGET_LATENTS = 7  # x, y, z, α, β, γ and the spotlight angle
SENSITIVITY_FACTOR, LUMINANCE_MEAN_TOL, LUMINANCE_STD_TOL, MIN_MEDIAN_IOU = 1.5, 0.05, 0.03, 0.80
LUMA = np.array([0.299, 0.587, 0.114])


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Compare our 3DIdent scene with reference renders of the original.")
    parser.add_argument("ref_dir", help="Reference folder: raw_latents.npy, sweep_index.npy, images/, masks/.")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="Also write DIR/<REF_DIR's name>.txt (this report) and DIR/<name>_side_by_side.png.")
    parser.add_argument("--batch-size", type=int, default=64, help="Scenes rendered at once (64).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads (1).")
    return parser


def read_png(path: Path) -> np.ndarray:
    """A PNG as float RGB in [0, 1] (an alpha channel is dropped; a grey image is repeated)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def read_reference(folder: Path) -> dict[str, np.ndarray]:
    """REF_DIR's arrays: raw latents, sweep index, images (N, H, W, 3) and masks (N, H, W) in [0, 1].
    Raises FileNotFoundError or ValueError naming what is missing or inconsistent."""
    raw = np.load(folder / "raw_latents.npy")
    sweeps = np.load(folder / "sweep_index.npy")
    if raw.ndim != 2 or raw.shape[1] != len(NAMES):
        raise ValueError(f"{folder / 'raw_latents.npy'}: expected (N, {len(NAMES)}) latents, got {raw.shape}")
    if sweeps.ndim != 2 or sweeps.shape[1] != 3 or len(sweeps) >= len(raw):
        raise ValueError(f"{folder / 'sweep_index.npy'}: expected (S, 3) rows with S < {len(raw)}, got {sweeps.shape}")
    names = [image_name(i, len(raw)) for i in range(len(raw))]
    images = np.stack([read_png(folder / "images" / name) for name in names])
    masks = np.stack([read_png(folder / "masks" / name)[..., 0] for name in names])
    return {"raw": raw, "sweeps": sweeps, "images": images, "masks": masks}


def render_ours(raw: np.ndarray, size: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Our renders of raw latents (N, 10): images (N, size, size, 3) in [0, 1] and object coverage (N, size, size)."""
    scene = torch.from_numpy(raw_to_scene(raw))
    images, masks = [], []
    for start in range(0, len(scene), batch_size):
        image, mask = render_with_masks(scene[start:start + batch_size], size)
        images.append(image.numpy() / 255.0)
        masks.append(mask.numpy())
    return np.concatenate(images), np.concatenate(masks)


def sweep_sensitivity(images: np.ndarray, sweeps: np.ndarray) -> np.ndarray:
    """Mean |Δ pixel| between neighbouring renders of each sweep, averaged per latent → (10,) (NaN: no sweep of
    two or more renders)."""
    totals, counts = np.zeros(len(NAMES)), np.zeros(len(NAMES))
    for base, latent in sorted({(b, k) for b, k, _ in sweeps.tolist()}):
        rows = np.flatnonzero((sweeps[:, 0] == base) & (sweeps[:, 1] == latent))
        if len(rows) < 2:
            continue
        rows = rows[np.argsort(sweeps[rows, 2])]
        totals[int(latent)] += np.abs(np.diff(images[rows], axis=0)).mean()
        counts[int(latent)] += 1
    with np.errstate(invalid="ignore"):
        return totals / counts


def luminance_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean luminance and mean within-image std of luminance of images (N, H, W, 3)."""
    luma = images @ LUMA
    return float(luma.mean()), float(luma.reshape(len(luma), -1).std(1).mean())


def silhouette_iou(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """IoU per image of two coverage maps (N, H, W), each thresholded at 0.5 (a pixel half covered counts)."""
    a, b = ours >= 0.5, reference >= 0.5
    union = (a | b).sum((1, 2))
    return np.where(union > 0, (a & b).sum((1, 2)) / np.maximum(union, 1), 1.0)


def compare(reference: dict[str, np.ndarray], ours: np.ndarray, coverage: np.ndarray) -> tuple[list[str], bool]:
    """The report's lines and whether every fidelity target is met."""
    n_sweep = len(reference["sweeps"])
    ref_sens = sweep_sensitivity(reference["images"][:n_sweep], reference["sweeps"])
    our_sens = sweep_sensitivity(ours[:n_sweep], reference["sweeps"])
    ratio = our_sens / ref_sens
    lines = ["latent       reference     ours    ratio  target"]
    met = True
    for k, name in enumerate(NAMES):
        target = ""
        if k < TARGET_LATENTS:
            ok = 1 / SENSITIVITY_FACTOR <= ratio[k] <= SENSITIVITY_FACTOR
            met &= bool(ok)
            target = f"x{SENSITIVITY_FACTOR:g} {'ok' if ok else 'MISSED'}"
        lines.append(f"{name:<11} {ref_sens[k]:10.4f} {our_sens[k]:8.4f} {ratio[k]:8.2f}  {target}")
    ref_mean, ref_std = luminance_stats(reference["images"][n_sweep:])
    our_mean, our_std = luminance_stats(ours[n_sweep:])
    for label, ref_value, our_value, tol in (("luminance mean", ref_mean, our_mean, LUMINANCE_MEAN_TOL),
                                             ("luminance std", ref_std, our_std, LUMINANCE_STD_TOL)):
        ok = abs(our_value - ref_value) <= tol
        met &= ok
        lines.append(f"{label:<15} reference {ref_value:.4f} ours {our_value:.4f}  ±{tol:g} {'ok' if ok else 'MISSED'}")
    iou = silhouette_iou(coverage[n_sweep:], reference["masks"][n_sweep:])
    ok = float(np.median(iou)) >= MIN_MEDIAN_IOU
    met &= ok
    lines.append(f"silhouette IoU over {len(iou)} random scenes: median {np.median(iou):.3f} "
                 f"(10-90 %: {np.quantile(iou, 0.1):.3f}-{np.quantile(iou, 0.9):.3f})  "
                 f"≥ {MIN_MEDIAN_IOU:g} {'ok' if ok else 'MISSED'}")
    ref_share, our_share = (np.median(m[n_sweep:].mean((1, 2))) for m in (reference["masks"], coverage))
    lines.append(f"object coverage, median share of the image: reference {ref_share:.4f} ours {our_share:.4f}")
    lines.append("all fidelity targets met" if met else "fidelity targets MISSED")
    return lines, met


def side_by_side(reference: np.ndarray, ours: np.ndarray, columns: int = 8) -> np.ndarray:
    """A picture: rows of `columns` reference images, each above our render of the same latents (uint8)."""
    rows = []
    for start in range(0, len(reference) - columns + 1, columns):
        rows.append(np.concatenate(list(reference[start:start + columns]), 1))
        rows.append(np.concatenate(list(ours[start:start + columns]), 1))
    return (np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    folder = Path(args.ref_dir)
    torch.set_num_threads(max(args.threads, 1))
    try:
        reference = read_reference(folder)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: reference folder {folder}: {e}") from None
    ours, coverage = render_ours(reference["raw"], reference["images"].shape[1], args.batch_size)
    lines, met = compare(reference, ours, coverage)
    report = "\n".join([f"reference: {folder.resolve().name} ({len(reference['raw'])} renders, "
                        f"{reference['images'].shape[1]} px)", *lines])
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / f"{folder.resolve().name}.txt", lambda f: f.write((report + "\n").encode()))
        n_sweep = len(reference["sweeps"])
        picked = slice(n_sweep, n_sweep + 24)
        save_png(side_by_side(reference["images"][picked], ours[picked]),
                 out / f"{folder.resolve().name}_side_by_side.png")
    if not met:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
