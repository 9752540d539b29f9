"""Is a latent absent from f(x), or only not linear in it? Per-latent R² of a linear and of a k-nearest-
neighbour readout of z from a trained encoder's output on a 3DIdent folder (both fitted on one half of the
folder, scored on the other, as main_3dident.py's R²). A latent with a low linear but a high k-NN R² is
encoded non-linearly; low in both, f has not learned it. Also printed: the spectrum of f(x)'s correlation
matrix, whose eigenvalues near 0 count the output dimensions f has collapsed (spent on no direction of its own).

With --layers the same readouts (and an MLP's) are taken inside f, to find where a latent's information is lost
(docs/3dident.md, "Where the rotations die"): `features` is the input of the head's first Linear (the pooled
backbone features), `hidden` the input of its last Linear, `pre_box` the head's output before the box sigmoid,
`output` f(x). The box's bound b, the share of pre-sigmoid values beyond ±4 (a saturated sigmoid passes no
gradient) and the singular values of the last Linear are printed too.

Takes main_3dident.py's flags (the model's: --encoder, --box-constraint, ...; the folder; --load-model, without
which the untrained encoder of --seed is read out):

    python tools/3dident/readout.py --offline-dataset runs/3dident_cpu/test --load-model MODEL --encoder conv \
        --non-periodic-rotation-and-color --box-constraint learnable --no-cuda --workers 1 \
        --image-normalisation folder --image-stats runs/3dident_cpu/train/image_stats.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from torch import nn
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import disentanglement_utils  # noqa: E402
import main_3dident  # noqa: E402
from training_utils import die, select_device, set_seed  # noqa: E402


LAYERS = ("features", "hidden", "pre_box", "output")


def readout_r2(z: np.ndarray, hz: np.ndarray, neighbours: int = 10, mlp: bool = False) -> dict[str, np.ndarray]:
    """Per-latent held-out R² of z from hz: "linear" (least squares), "knn" (mean of the k nearest neighbours
    in the standardised hz) and, with `mlp`, "mlp" (disentanglement_utils.MLP_HIDDEN ReLU layers on the
    standardised hz and z), fitted on the first half of the rows, scored on the second."""
    half = len(z) // 2
    hz = (hz - hz[:half].mean(0)) / (hz[:half].std(0) + 1e-12)
    linear = disentanglement_utils.linear_disentanglement(z, hz, mode="r2", train_test_split=True)[1]
    knn = KNeighborsRegressor(neighbours).fit(hz[:half], z[:half]).predict(hz[half:])
    scores = {"linear": r2_score(*linear, multioutput="raw_values"),
              "knn": r2_score(z[half:], knn, multioutput="raw_values")}
    if mlp:
        mean, std = z[:half].mean(0), z[:half].std(0) + 1e-12
        model = MLPRegressor(hidden_layer_sizes=disentanglement_utils.MLP_HIDDEN, early_stopping=True, max_iter=500,
                             random_state=0)
        prediction = model.fit(hz[:half], (z[:half] - mean) / std).predict(hz[half:]).reshape(len(z) - half, -1)
        scores["mlp"] = r2_score(z[half:], prediction * std + mean, multioutput="raw_values")
    return scores


def output_spectrum(hz: np.ndarray) -> np.ndarray:
    """Eigenvalues of the correlation matrix of the outputs (columns of hz), largest first; they sum to the
    number of outputs, and as many are near 0 as the outputs have collapsed dimensions."""
    return np.linalg.eigvalsh(np.corrcoef(hz, rowvar=False))[::-1]


def layer_taps(f: nn.Module) -> dict[str, tuple[nn.Module, bool]]:
    """The module whose input (True) or output (False) is each of LAYERS, for f = Sequential(body, norm) as
    main_3dident.build_encoder makes it (the head's Linears are the body's last two)."""
    if not isinstance(f, nn.Sequential) or len(f) != 2:
        raise ValueError("--layers needs a trained encoder (not --identity-solution)")
    linears = [m for m in f[0].modules() if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise ValueError("--layers needs an encoder with a head of two Linear layers")
    return {"features": (linears[-2], True), "hidden": (linears[-1], True), "pre_box": (f[0], False),
            "output": (f, False)}


def record_layers(f: nn.Module, layers: list[str]) -> tuple[dict[str, list[torch.Tensor]], list]:
    """Forward hooks that append each of `layers` (per batch, on the CPU) to the returned lists; and the hooks'
    handles, to remove them. No layers, no hooks (and any encoder)."""
    recorded, handles = {name: [] for name in layers}, []
    taps = layer_taps(f) if layers else {}
    for name in layers:
        module, is_input = taps[name]

        def hook(_module, inputs, output, name=name, is_input=is_input):
            recorded[name].append((inputs[0] if is_input else output).detach().float().flatten(1).cpu())
        handles.append(module.register_forward_hook(hook))
    return recorded, handles


def print_head_state(f: nn.Module, pre_box: np.ndarray) -> None:
    """b per dimension (a learnable box), the share of |pre-sigmoid| > 4 per dimension, and the singular values
    of the head's last Linear."""
    b = getattr(f[1], "b", None)
    if b is not None:
        print("box bound b: " + " ".join(f"{v:.3f}" for v in b.detach().cpu().tolist()))
    print("share |pre-sigmoid| > 4: " + " ".join(f"{v:.3f}" for v in (np.abs(pre_box) > 4).mean(0)))
    last = layer_taps(f)["hidden"][0].weight.detach().cpu()
    print("last Linear singular values: " + " ".join(f"{v:.3f}" for v in torch.linalg.svdvals(last).tolist()))


def print_scores(scores: dict[str, np.ndarray], prefix: str = "") -> None:
    for name, values in scores.items():
        print(f"{prefix}{name:>6}: " + " ".join(f"{v:6.3f}" for v in values) + f" | mean {np.mean(values):.4f}")


def get_args_parser() -> argparse.ArgumentParser:
    """main_3dident.py's parser (the model's flags, the folder, --load-model) with the readout's flags."""
    parser = main_3dident.get_args_parser()
    parser.description = "Per-latent R² of a linear and a k-NN readout of z from f(x) on a 3DIdent folder."
    parser.add_argument("--neighbours", type=int, default=10, help="k of the k-NN readout (10).")
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=None,
                        help="Also read z out of these layers inside f, with a linear, a k-NN and an MLP readout, "
                             "and print the head's state: where is a latent lost? (all four: "
                             "features hidden pre_box output)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    args.mode = "test"
    layout = main_3dident.check_args(args)
    data = main_3dident.open_dataset(args, layout)
    device = select_device(not args.no_cuda)
    set_seed(args.seed)
    f = main_3dident.build_encoder(args, layout).to(device, memory_format=main_3dident.memory_format(args, device))
    if args.load_model:
        main_3dident.load(f, args.load_model)
    mix = main_3dident.build_mixing(args, layout.dim, device, main_3dident.image_statistics(args))
    try:
        recorded, handles = record_layers(f, args.layers or [])
    except ValueError as error:
        die(str(error))
    z, hz = main_3dident.encode(f, main_3dident.make_embed(f, mix, device, args.amp),
                                DataLoader(data, batch_size=args.batch_size, num_workers=args.workers))
    for handle in handles:
        handle.remove()
    print(f"{len(z)} images; per-latent R² (columns {list(layout.columns)})")
    print_scores(readout_r2(z.numpy(), hz.numpy(), args.neighbours))
    layers = {name: torch.cat(batches).numpy() for name, batches in recorded.items()}
    for name, h in layers.items():
        print(f"[{name}: {h.shape[1]} dimensions]")
        print_scores(readout_r2(z.numpy(), h, args.neighbours, mlp=True), prefix="  ")
    if "pre_box" in layers:
        print_head_state(f, layers["pre_box"])
    spectrum = output_spectrum(hz.numpy())
    print("output correlation eigenvalues: " + " ".join(f"{v:.3f}" for v in spectrum)
          + f" | {int((spectrum < 0.1).sum())} below 0.1")


if __name__ == "__main__":
    main()
