"""Synthetic identifiability experiments (paper §5.1, Table 1).

Latents z live in a box, on a sphere or in R^n; observations are x = g(z) for a random invertible
MLP g. An MLP encoder f is trained with InfoNCE on positive pairs (g(z), g(z̃)), z̃ ~ p(z̃ | z), and
scored by R² (affine identifiability) and MCC (permutation identifiability) of h = f∘g. A
supervised baseline (f regressed onto z) runs first.

    python main_mlp.py --n 10 --p 1 --c-p 1 --c-param 0.05 --box-norm --save-dir runs/box_l1
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from torch import nn

import disentanglement_utils
import encoders
import invertible_network_utils
import losses
import spaces
import training_loop
from latent_spaces import LatentSpace
from training_loop import RunFolder, Schedule, Task
from training_utils import CheckpointError, add_metrics_argument, atomic_save, die, select_device, set_seed

N_EVAL_SAMPLES = 4096
LOSS_WINDOW = 100
PHASES = ("supervised", "unsupervised")
METRICS = ["phase", *training_loop.COLUMNS]
RESUME_FREE = ("resume_training", "threads", "no_cuda", "save_dir", "metrics")  # flags a resumed run may change


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("main_mlp.py",
                                     description="Disentanglement with InfoNCE/Contrastive Learning - MLP Mixing")
    parser.add_argument("--sphere-r", type=float, default=1.0, help="Radius of the latent sphere (1).")
    parser.add_argument("--box-min", type=float, default=0.0, help="For box normalization only. Minimal value of box.")
    parser.add_argument("--box-max", type=float, default=1.0, help="For box normalization only. Maximal value of box.")
    parser.add_argument("--sphere-norm", action="store_true", help="Normalize output to a sphere.")
    parser.add_argument("--box-norm", action="store_true", help="Normalize output to a box.")
    parser.add_argument("--only-supervised", action="store_true", help="Only train supervised model.")
    parser.add_argument("--only-unsupervised", action="store_true", help="Only train unsupervised model.")
    parser.add_argument("--more-unsupervised", type=int, default=3,
                        help="How many more steps to do for unsupervised compared to supervised training (3).")
    parser.add_argument("--save-dir", type=str, default="",
                        help="Folder for g, f, checkpoint.pt, metrics.csv and final_scores.json (none if empty).")
    parser.add_argument("--num-eval-batches", type=int, default=10,
                        help="Number of batches to average evaluation performance at the end.")
    parser.add_argument("--rej-mult", type=float, default=1,
                        help="Memory/CPU trade-off factor for rejection resampling (>= 1; 1 to 4).")
    parser.add_argument("--seed", type=int, default=None,
                        help="Seeds g, f and every sample drawn (default: a random seed, printed and saved).")
    parser.add_argument("--act-fct", type=str, default="leaky_relu",
                        help="Activation function in mixing network g: "
                             + ", ".join(invertible_network_utils.ACTIVATIONS) + ".")
    parser.add_argument("--c-param", type=float, default=0.05,
                        help="Concentration parameter of the conditional distribution "
                             "(scale for Lp conditionals, 0.05; kappa for vMF, e.g. 10).")
    parser.add_argument("--m-param", type=float, default=1.0,
                        help="Additional parameter for the marginal (only relevant if it is not uniform).")
    parser.add_argument("--tau", type=float, default=1.0, help="Temperature of the contrastive loss (1).")
    parser.add_argument("--n-mixing-layer", type=int, default=3,
                        help="Number of layers in nonlinear mixing network g.")
    parser.add_argument("--n", type=int, default=10, help="Dimensionality of the latents.")
    parser.add_argument("--space-type", type=str, default="box", choices=("box", "sphere", "unbounded"))
    parser.add_argument("--m-p", type=float, default=0,
                        help="Type of ground-truth marginal distribution. p=0 means uniform; "
                             "all other p values correspond to (projected) Lp Exponential")
    parser.add_argument("--c-p", type=float, default=2,
                        help="Exponent of ground-truth Lp Exponential distribution (0 = vMF, sphere only).")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (1e-4).")
    parser.add_argument("--p", type=float, default=2,
                        help="Exponent of the assumed model Lp Exponential distribution (0 = dot product, vMF).")
    parser.add_argument("--batch-size", type=int, default=6144, help="Pairs per step (6144 in the paper).")
    parser.add_argument("--n-log-steps", type=int, default=250, help="Log loss, R² and MCC every this many steps.")
    parser.add_argument("--n-steps", type=int, default=100001,
                        help="Supervised steps (the contrastive phase runs n_steps × more_unsupervised).")
    parser.add_argument("--encoder-scale", type=float, default=1.0,
                        help="Multiplies f's hidden widths [10n, 50n, 50n, 50n, 50n, 10n] (1 = the paper's f).")
    parser.add_argument("--encoder-init", choices=("kaiming", "torch"), default="kaiming",
                        help="Initialisation of f: kaiming (He-normal, recommended: all latents are learned at once) "
                             "or torch (PyTorch's default, as in the original: tiny outputs, latents learned one "
                             "at a time with long plateaus in between).")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (0 = torch's default; 1 when other jobs share the CPU).")
    parser.add_argument("--no-cuda", action="store_true", help="Stay on the CPU even when a GPU is present.")
    parser.add_argument("--resume-training", action="store_true",
                        help="Continue from <save-dir>/checkpoint.pt where an interrupted run stopped.")
    add_metrics_argument(parser)
    return parser


def validate_args(args: argparse.Namespace) -> None:
    """One-line errors for flag values that cannot work."""
    positive = ["n", "batch_size", "n_steps", "n_log_steps", "num_eval_batches", "n_mixing_layer",
                "more_unsupervised", "c_param", "m_param", "tau", "lr", "sphere_r", "encoder_scale"]
    for name in positive:
        if not getattr(args, name) > 0:
            die(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("m_p", "c_p", "p", "threads"):
        if getattr(args, name) < 0:
            die(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.rej_mult < 1:
        die(f"--rej-mult must be >= 1, got {args.rej_mult}")
    if args.box_min >= args.box_max:
        die(f"--box-min must be smaller than --box-max, got {args.box_min} and {args.box_max}")
    if args.act_fct not in invertible_network_utils.ACTIVATIONS:
        die(f"--act-fct must be one of {', '.join(invertible_network_utils.ACTIVATIONS)}, got {args.act_fct!r}")
    if args.space_type == "unbounded" and args.m_p == 0:
        die("--space-type unbounded has no uniform marginal: set --m-p to 1, 2 or another exponent")
    if args.c_p == 0 and args.space_type != "sphere":
        die("--c-p 0 (von Mises-Fisher conditional) needs --space-type sphere")
    if args.only_supervised and args.only_unsupervised:
        die("--only-supervised and --only-unsupervised exclude each other")
    if args.sphere_norm and args.box_norm:
        die("--sphere-norm and --box-norm exclude each other")
    if args.resume_training and not args.save_dir:
        die("--resume-training needs --save-dir")


def build_space(args: argparse.Namespace) -> spaces.Space:
    if args.space_type == "box":
        return spaces.NBoxSpace(args.n, args.box_min, args.box_max, rej_mult=args.rej_mult)
    if args.space_type == "sphere":
        return spaces.NSphereSpace(args.n, args.sphere_r)
    return spaces.NRealSpace(args.n)


def lp_sampler(space: spaces.Space, p: float, scale: float):
    """(mean, size, device) ↦ samples from the Lp-exponential family: 1 Laplace, 2 Normal, else generalized."""
    if p == 1:
        return lambda mean, size, device: space.laplace(mean, scale, size, device)
    if p == 2:
        return lambda mean, size, device: space.normal(mean, scale, size, device)
    return lambda mean, size, device: space.generalized_normal(mean, scale, p, size, device)


def build_latent_space(args: argparse.Namespace) -> LatentSpace:
    """Marginal (paper §5.1): m_p 0 uniform, else Lp around η (0, or r·e_1 on the sphere);
    conditional around z: c_p 0 vMF(κ = c_param), else Lp with scale c_param."""
    space = build_space(args)
    eta = torch.zeros(args.n)
    if args.space_type == "sphere":
        eta[0] = args.sphere_r
    if args.m_p == 0:
        def sample_marginal(space, size, device):
            return space.uniform(size, device)
    else:
        draw = lp_sampler(space, args.m_p, args.m_param)

        def sample_marginal(space, size, device):
            return draw(eta, size, device)
    if args.c_p == 0:
        def sample_conditional(space, z, size, device):
            return space.von_mises_fisher(z, args.c_param, size, device)
    else:
        draw_conditional = lp_sampler(space, args.c_p, args.c_param)

        def sample_conditional(space, z, size, device):
            return draw_conditional(z, size, device)
    return LatentSpace(space, sample_marginal, sample_conditional)


def build_encoder(args: argparse.Namespace) -> nn.Module:
    """f: MLP n → [10n, 50n, 50n, 50n, 50n, 10n]·encoder_scale → n, with the output normalisation of the
    original (github.com/brendel-group/cl-ica, main_mlp.py), the same for both phases: --sphere-norm or
    --box-norm learnable, else the unit sphere for the dot-product model (--p 0), else none."""
    normalization, kwargs = None, {}
    if args.box_norm:
        normalization, kwargs = "learnable_box", {"init_abs_bound": args.box_max - args.box_min}
    elif args.sphere_norm:
        normalization, kwargs = "learnable_sphere", {"init_r": args.sphere_r}
    elif args.p == 0:
        normalization = "fixed_sphere"
    hidden = [max(1, round(w * args.n * args.encoder_scale)) for w in (10, 50, 50, 50, 50, 10)]
    f = encoders.get_mlp(args.n, args.n, hidden, output_normalization=normalization, output_normalization_kwargs=kwargs)
    return encoders.kaiming_init_(f) if args.encoder_init == "kaiming" else f


def build_loss(args: argparse.Namespace, phase: str):
    """(z, z̃, f(x), f(x̃)) ↦ scalar loss: MSE to z (supervised) or InfoNCE with rolled negatives."""
    if phase == "supervised":
        return lambda z1, z2, h1, h2: nn.functional.mse_loss(h1, z1)
    similarity = "dot" if args.p == 0 else args.p
    return lambda z1, z2, h1, h2: losses.info_nce(h1, h2, torch.roll(h1, 1, 0), similarity, args.tau).mean()


@torch.no_grad()
def scores(h: nn.Module, latent_space: LatentSpace, n_samples: int, device="cpu", metrics=()) -> dict:
    """R² of a linear map h(z) → z (fitted on one half, scored on the other), the MCC and the `metrics`."""
    z = latent_space.sample_marginal(n_samples, device)
    hz = h(z)
    (r2, _), _ = disentanglement_utils.linear_disentanglement(z, hz, mode="r2", train_test_split=True)
    (mcc, _), _ = disentanglement_utils.permutation_disentanglement(z, hz, mode="pearson", rescaling=True)
    return {"r2": r2, "mcc": mcc, **disentanglement_utils.metric_scores(z, hz, metrics)}


def final_scores(h: nn.Module, latent_space: LatentSpace, args: argparse.Namespace, device) -> dict:
    """R², MCC and the --metrics on `num_eval_batches` fresh batches: mean and std."""
    rows = [scores(h, latent_space, args.batch_size, device, args.metrics) for _ in range(args.num_eval_batches)]
    values = torch.tensor([list(row.values()) for row in rows])
    mean, std = values.mean(0), values.std(0) if len(rows) > 1 else torch.zeros(len(rows[0]))
    return {f"{key}_{stat}": v[i].item() for i, key in enumerate(rows[0]) for stat, v in (("mean", mean), ("std", std))}


class Run:
    """g and one f per phase (one `model`, the weights a checkpoint keeps), the latent space, the results."""

    def __init__(self, args: argparse.Namespace, device: torch.device = torch.device("cpu")):
        self.args, self.device = args, device
        self.latent_space = build_latent_space(args)
        self.g = invertible_network_utils.construct_invertible_mlp(
            n=args.n, n_layers=args.n_mixing_layer, n_iter_cond_thresh=25000, cond_thresh_ratio=0.0,
            act_fct=args.act_fct).to(device)
        self.fs = {phase: build_encoder(args).to(device) for phase in PHASES}
        self.model = nn.ModuleDict({"g": self.g, **{f"f_{phase}": f for phase, f in self.fs.items()}})
        self.results: dict[str, dict] = {}


class Phase(Task):
    """One phase as a training_loop.Task: fresh (z, z̃) batches, z ~ p(z), z̃ ~ p(z̃ | z), encoded in one
    pass through h = f∘g; MSE to z or InfoNCE; R² and MCC of h."""

    def __init__(self, run: Run, phase: str):
        self.run, self.phase, self.label, self.model = run, phase, f"{phase} ", run.model
        self.h = nn.Sequential(run.g, run.fs[phase])
        self.loss_fn, self.metrics = build_loss(run.args, phase), run.args.metrics

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        z1 = self.run.latent_space.sample_marginal(self.run.args.batch_size, self.run.device)
        return z1, self.run.latent_space.sample_conditional(z1, self.run.args.batch_size, self.run.device)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        z1, z2 = batch
        h1, h2 = self.h(torch.cat([z1, z2])).chunk(2)
        return self.loss_fn(z1, z2, h1, h2)

    def evaluate(self) -> dict:
        return {"phase": self.phase, **scores(self.h, self.run.latent_space, N_EVAL_SAMPLES, self.run.device)}

    def final_scores(self) -> dict:
        return final_scores(self.h, self.run.latent_space, self.run.args, self.run.device)

    def state_dict(self) -> dict:
        return {"phase": self.phase, "results": dict(self.run.results)}

    def load_state_dict(self, state: dict) -> None:
        self.run.results = dict(state["results"])


def train_phase(run: Run, phase: str, folder: RunFolder | None, resume: dict | None) -> dict:
    """Adam on f for the phase's steps (n_steps, × more_unsupervised for the contrastive one); final scores."""
    args = run.args
    n_steps = args.n_steps * (args.more_unsupervised if phase == "unsupervised" else 1)
    optimizer = torch.optim.Adam(run.fs[phase].parameters(), lr=args.lr)
    schedule = Schedule(n_steps, args.n_log_steps, args.n_log_steps, loss_window=LOSS_WINDOW)
    report = training_loop.fit(Phase(run, phase), optimizer, schedule, folder, resume)
    extra = [key.removesuffix("_mean") for key in list(report)[4::2]]  # the --metrics scores
    print(f"{phase} final (mean ± std over {args.num_eval_batches} batches): "
          f"R² {report['r2_mean']:.4f} ± {report['r2_std']:.4f}  MCC {report['mcc_mean']:.4f} ± {report['mcc_std']:.4f}"
          + "".join(f"  {key} {report[key + '_mean']:.4f} ± {report[key + '_std']:.4f}" for key in extra))
    return report


def save_outputs(run: Run, folder: RunFolder, mixing_scores: dict) -> None:
    atomic_save(run.g.state_dict(), folder.path / "g.pt")
    for phase, f in run.fs.items():
        if phase in run.results:
            atomic_save(f.state_dict(), folder.path / f"f_{phase}.pt")
    folder.write_final_scores({"mixing": mixing_scores, **run.results})


def read_resume(args: argparse.Namespace) -> dict:
    """<save-dir>/checkpoint.pt, checked against the flags (a run without --seed takes the checkpoint's)."""
    ckpt = training_loop.read_resume_checkpoint(Path(args.save_dir) / "checkpoint.pt")
    if args.seed is None:
        args.seed = ckpt["args"]["seed"]
    training_loop.check_same_flags(ckpt["args"], vars(args), training_loop.flag_names(get_args_parser()),
                                   RESUME_FREE)
    return ckpt


def main(args: argparse.Namespace) -> dict:
    """Train the selected phases; return {phase: final scores}."""
    validate_args(args)
    try:
        ckpt = read_resume(args) if args.resume_training else None
    except CheckpointError as e:
        die(str(e))
    if args.seed is None:
        args.seed = random.randrange(2**31)
    print(f"seed: {args.seed}")
    set_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Run(args, select_device(not args.no_cuda and torch.cuda.is_available()))
    mixing = scores(run.g, run.latent_space, N_EVAL_SAMPLES, run.device)
    print(f"how entangled is x = g(z): R² {mixing['r2']:.4f} MCC {mixing['mcc']:.4f}")
    folder = RunFolder(args.save_dir, args, METRICS, ckpt, run.device) if args.save_dir else None
    phases = [p for p in PHASES if not (args.only_unsupervised and p == "supervised")
              and not (args.only_supervised and p == "unsupervised")]
    resume_phase = PHASES.index(ckpt["data"]["phase"]) if ckpt else -1
    if ckpt:
        print(f"resuming {ckpt['data']['phase']} at step {ckpt['step']}")
    for phase in phases:
        if PHASES.index(phase) < resume_phase:  # finished before the checkpoint
            run.results[phase] = ckpt["data"]["results"][phase]
            continue
        try:
            run.results[phase] = train_phase(run, phase, folder, ckpt if PHASES.index(phase) == resume_phase else None)
        except CheckpointError as e:
            die(str(e))
    if folder:
        save_outputs(run, folder, mixing)
    return run.results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
