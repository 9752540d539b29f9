"""main_mlp.py end to end on tiny configurations: learning, resuming, reproducibility, bad flags."""
import csv
import json
import subprocess
import sys

import pytest
import torch

import encoders
import main_mlp
from tests import killing

TINY = ["--n", "2", "--batch-size", "64", "--n-steps", "20", "--more-unsupervised", "2", "--n-log-steps", "7",
        "--encoder-scale", "0.2", "--num-eval-batches", "2", "--lr", "1e-3", "--seed", "5", "--threads", "1"]


def parse(*argv: str):
    return main_mlp.get_args_parser().parse_args(list(argv))


SHORT = ["--n", "3", "--more-unsupervised", "1", "--only-unsupervised", "--n-log-steps", "1000", "--lr", "1e-3",
         "--num-eval-batches", "3", "--batch-size", "256"]


def untrained_and_trained(*argv: str) -> tuple[tuple[float, float], dict]:
    """(R², MCC) of the untrained h = f∘g, and the final scores after training, for the same flags."""
    args = parse(*SHORT, *argv)
    main_mlp.set_seed(args.seed)
    run = main_mlp.Run(args)
    untrained = main_mlp.scores(torch.nn.Sequential(run.g, run.fs["unsupervised"]), run.latent_space, 4096)
    return (untrained["r2"], untrained["mcc"]), main_mlp.main(args)["unsupervised"]


def test_contrastive_model_recovers_sphere_latents():
    """vMF conditional and vMF (dot-product) model on the sphere: R² rises far above the untrained f's (0.990 from
    0.417 when this test was written)."""
    (untrained_r2, _), result = untrained_and_trained("--space-type", "sphere", "--c-p", "0", "--c-param", "10",
                                                      "--p", "0", "--n-steps", "150", "--seed", "1")
    assert result["r2_mean"] > 0.95 and result["r2_mean"] > untrained_r2 + 0.2


def test_recipe_recovers_box_latents_up_to_permutation():
    """Laplace conditional, L1 model, τ = λ, He-initialised f: the MCC rises far above the untrained f's (0.988 from
    0.630 when this test was written)."""
    (_, untrained_mcc), result = untrained_and_trained("--space-type", "box", "--c-p", "1", "--c-param", "0.05",
                                                       "--p", "1", "--tau", "0.05", "--n-steps", "200",
                                                       "--encoder-scale", "0.5", "--seed", "0")
    assert result["mcc_mean"] > 0.9 and result["mcc_mean"] > untrained_mcc + 0.2


def test_supervised_baseline_fits_the_latents():
    args = parse("--n", "3", "--batch-size", "256", "--n-steps", "150", "--only-supervised", "--lr", "1e-3",
                 "--n-log-steps", "1000", "--num-eval-batches", "2", "--seed", "2")
    assert main_mlp.main(args)["supervised"]["r2_mean"] > 0.95


# Final scores of TINY (seed 5) before the training loop moved to training_loop.py: it must not change them. Compared
# to 1e-4: numpy/scikit-learn releases move the last digits of the scores (their reductions, not our loop).
PINNED = {"supervised": {"r2_mean": 0.7372907400131226, "r2_std": 0.05595790594816208,
                         "mcc_mean": 0.5694258809089661, "mcc_std": 0.009635191410779953},
          "unsupervised": {"r2_mean": 0.4478379487991333, "r2_std": 0.1257626712322235,
                           "mcc_mean": 0.5438506603240967, "mcc_std": 0.013141303323209286}}
PINNED_BOX_L1 = {"r2_mean": 0.41509106755256653, "r2_std": 0.06707573682069778,
                 "mcc_mean": 0.5753029584884644, "mcc_std": 0.048321403563022614}


def test_final_scores_are_pinned():
    scores = main_mlp.main(parse(*TINY))
    assert scores.keys() == PINNED.keys()
    assert all(scores[phase] == pytest.approx(PINNED[phase], rel=1e-4) for phase in PINNED)
    box = main_mlp.main(parse(*TINY, "--p", "1", "--box-norm", "--only-unsupervised"))
    assert box.keys() == {"unsupervised"} and box["unsupervised"] == pytest.approx(PINNED_BOX_L1, rel=1e-4)


LONGER = [*TINY[:4], "--n-steps", "100", "--more-unsupervised", "2", "--n-log-steps", "10", *TINY[10:]]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    """SIGKILLed in the supervised phase (row 3), its resumed run again in the unsupervised one (row 16), then
    resumed to the end: the scores, metrics and models of a run left alone."""
    main_mlp.main(parse(*LONGER, "--save-dir", str(tmp_path / "full")))
    cut = tmp_path / "cut"
    killing.kill_twice(["main_mlp.py", *LONGER, "--save-dir", cut], "--resume-training", cut / "metrics.csv", (3, 16))
    main_mlp.main(parse(*LONGER, "--save-dir", str(cut), "--resume-training"))
    full, resumed = (json.loads((d / "final_scores.json").read_text()) for d in (tmp_path / "full", cut))
    assert resumed == full
    assert killing.rows_without_time(cut / "metrics.csv") == killing.rows_without_time(tmp_path / "full" / "metrics.csv")
    for name in ("g.pt", "f_supervised.pt", "f_unsupervised.pt"):
        a, b = (torch.load(d / name, weights_only=True) for d in (tmp_path / "full", cut))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_folder_contents(tmp_path):
    main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--only-supervised"))
    written = json.loads((tmp_path / "args.json").read_text())
    assert written["lr"] == 1e-3 and {"git_commit", "torch", "numpy", "device", "world_size"} <= set(written["environment"])
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "step", "rng", "data", "args", "final", "metrics_rows"} <= set(ckpt)
    with open(tmp_path / "metrics.csv", newline="") as f:
        assert csv.DictReader(f).fieldnames == ["phase", "step", "loss", "mean_loss", "r2", "mcc", "elapsed_s"]


@pytest.mark.parametrize("norm, module", [("--box-norm", encoders.BoxNormalization),
                                          ("--sphere-norm", encoders.SphereNormalization)])
def test_supervised_baseline_has_the_output_normalisation_of_the_original(norm, module):
    run = main_mlp.Run(parse(*TINY, norm))
    assert isinstance(run.fs["supervised"][-1], module) and isinstance(run.fs["unsupervised"][-1], module)
    dot = main_mlp.Run(parse(*TINY, "--p", "0"))
    assert all(torch.allclose(f(torch.randn(5, 2)).norm(dim=1), torch.ones(5)) for f in dot.fs.values())


def test_same_seed_same_printed_scores(capsys):
    main_mlp.main(parse(*TINY))
    first = capsys.readouterr().out
    main_mlp.main(parse(*TINY))
    assert capsys.readouterr().out == first
    assert "unsupervised final" in first and "how entangled" in first


@pytest.mark.parametrize("argv,flag", [
    (["--n", "0"], "--n"),
    (["--batch-size", "0"], "--batch-size"),
    (["--c-param", "-0.1"], "--c-param"),
    (["--space-type", "unbounded"], "--space-type unbounded"),
    (["--act-fct", "swish"], "--act-fct"),
    (["--box-min", "1", "--box-max", "0"], "--box-min"),
    (["--c-p", "0"], "--c-p 0"),
    (["--resume-training"], "--resume-training"),
])
def test_bad_flags_are_one_line_errors(argv, flag):
    with pytest.raises(SystemExit) as e:
        main_mlp.validate_args(parse(*argv))
    message = str(e.value)
    assert flag in message and "\n" not in message


@pytest.mark.slow
def test_bad_flag_from_the_command_line_exits_nonzero_without_traceback():
    proc = subprocess.run([sys.executable, "main_mlp.py", "--n", "0"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "error: --n must be positive, got 0"


def test_resume_without_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="checkpoint not found"):
        main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--resume-training"))


def test_resume_from_a_checkpoint_that_would_run_code_is_a_one_line_error(tmp_path, code_payload):
    """One line, and the payload does not run (the script prints SystemExit's text alone: see the bad-flag test)."""
    payload, marker = code_payload
    torch.save({"step": 1, "payload": payload}, tmp_path / "checkpoint.pt")
    with pytest.raises(SystemExit) as refused:
        main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--resume-training"))
    assert not marker.exists()
    assert "\n" not in str(refused.value) and str(refused.value).startswith(f"error: checkpoint {tmp_path}")


def test_resume_with_another_learning_rate_is_a_one_line_error(tmp_path):
    """The script exits with this message alone (SystemExit's text is what Python prints, without a traceback)."""
    main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--only-supervised"))
    with pytest.raises(SystemExit) as refused:
        main_mlp.main(parse(*TINY[:-6], "--lr", "1e-2", *TINY[-4:], "--only-supervised", "--save-dir", str(tmp_path),
                            "--resume-training"))
    assert str(refused.value) == "error: checkpoint was trained with --lr 0.001, this run has --lr 0.01"


def test_resume_with_other_latent_width_is_refused(tmp_path):
    main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--only-supervised"))
    args = TINY.copy()
    args[1] = "3"
    with pytest.raises(SystemExit, match="checkpoint was trained with --n 2, this run has --n 3"):
        main_mlp.main(parse(*args, "--save-dir", str(tmp_path), "--only-supervised", "--resume-training"))


def test_seed_listing_flags_and_defaults():
    """Every flag of the original --help listing, with the original's defaults (github.com/brendel-group/cl-ica)."""
    defaults = {"sphere_r": 1.0, "box_min": 0.0, "box_max": 1.0, "sphere_norm": False, "box_norm": False,
                "only_supervised": False, "only_unsupervised": False, "more_unsupervised": 3, "save_dir": "",
                "num_eval_batches": 10, "rej_mult": 1, "seed": None, "act_fct": "leaky_relu", "c_param": 0.05,
                "m_param": 1.0, "tau": 1.0, "n_mixing_layer": 3, "n": 10, "space_type": "box", "m_p": 0,
                "c_p": 2, "lr": 1e-4, "p": 2, "batch_size": 6144, "n_log_steps": 250, "n_steps": 100001,
                "resume_training": False, "no_cuda": False, "encoder_init": "kaiming"}
    args = vars(parse())
    assert {k: args[k] for k in defaults} == defaults


def test_resume_with_another_model_is_refused(tmp_path):
    main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--only-supervised"))
    with pytest.raises(SystemExit, match="trained with no --box-norm, this run has --box-norm"):
        main_mlp.main(parse(*TINY, "--save-dir", str(tmp_path), "--only-supervised", "--resume-training",
                            "--box-norm"))


def test_metrics_flag_adds_scores_and_leaves_the_others(tmp_path):
    """--metrics adds mean ± std of each named score to the final scores and final_scores.json; R² and MCC stay
    the pinned ones (the extra scores draw no random numbers from the run's generators)."""
    result = main_mlp.main(parse(*TINY, "--only-supervised", "--metrics", "sap", "dci", "--save-dir", str(tmp_path)))
    scores = result["supervised"]
    assert {k: scores[k] for k in PINNED["supervised"]} == pytest.approx(PINNED["supervised"], rel=1e-4)
    assert list(scores)[4:] == ["sap_mean", "sap_std", "dci_disentanglement_mean", "dci_disentanglement_std",
                                "dci_completeness_mean", "dci_completeness_std", "dci_informativeness_mean",
                                "dci_informativeness_std"]
    assert json.loads((tmp_path / "final_scores.json").read_text())["supervised"] == scores
    with pytest.raises(SystemExit):
        parse("--metrics", "beta_vae")
