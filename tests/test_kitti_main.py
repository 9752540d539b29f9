"""main_kitti.py: the seed's flag contract, run layout, --evaluate, resume, seeds, writer, errors, files
that would run code."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import main_kitti
import training_loop
from kitti_masks.dataset import FILE_NAME
from tests import killing
from tools.kitti_masks.make_synthetic import WalkConfig, write_synthetic

# Defaults of the seed's main_kitti.py listing (+ --data-dir, --resume, --model, --box-init, --mpi3d-variant,
# --metrics), spelled as there.
SEED_DEFAULTS = {
    "--box-norm": 0, "--p": 1, "--experiment-dir": "", "--evaluate": False, "--specify": "", "--random-search": False,
    "--random-seeds": False, "--seed": 2, "--beta": 1, "--gamma": 10, "--rate-prior": 6,
    "--data-distribution": "laplace",
    "--rate-data": 1, "--data-k": -1, "--betavae": False, "--search-beta": False, "--output-dir": "outputs",
    "--log-dir": "logs", "--ckpt-dir": "checkpoints", "--max-iter": 300000, "--dataset": "kittimasks",
    "--batch-size": 64, "--num-workers": 2, "--image-size": 64, "--use-writer": False, "--z-dim": 10, "--lr": 1e-4,
    "--beta1": 0.9, "--beta2": 0.999, "--ckpt-name": "last", "--log-step": 1000, "--save-step": 10000,
    "--kitti-max-delta-t": 1, "--natural-discrete": False, "--verbose": False, "--cuda": False, "--num_runs": 10,
    "--data-dir": "./data/kitti/", "--resume": False, "--model": "infonce", "--box-init": 1.0,
    "--mpi3d-variant": "real", "--metrics": []}
SLOWVAE_GROUPS = {"SlowVAE model": {"--beta", "--gamma", "--rate-prior", "--betavae", "--search-beta"},
                  "SlowVAE datasets": {"--data-distribution", "--rate-data", "--data-k", "--mpi3d-variant",
                                       "--natural-discrete"}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("kitti")
    write_synthetic(str(path), 12, seed=0, config=WalkConfig(max_len=20))
    return str(path)


@pytest.fixture
def run(data_dir, tmp_path):
    """main_kitti.main with small settings, writing under tmp_path."""
    def _run(*flags: str) -> list[dict]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return main_kitti.main(["--data-dir", data_dir, "--output-dir", str(tmp_path / "out"),
                                    "--ckpt-dir", str(tmp_path / "ckpt"), "--log-dir", str(tmp_path / "logs"),
                                    "--batch-size", "8", "--num-workers", "0", "--log-step", "2", *flags])
        finally:
            torch.set_num_threads(threads)
    return _run


def test_flags_and_defaults_match_the_seed_listing():
    parser = main_kitti.get_args_parser()
    options = {s: a for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}
    assert set(options) == set(SEED_DEFAULTS)
    for flag, default in SEED_DEFAULTS.items():
        assert options[flag].default == default, flag
    for title, flags in SLOWVAE_GROUPS.items():
        group, = [g for g in parser._action_groups if g.title == title]
        assert {a.option_strings[0] for a in group._group_actions} == flags
    assert not [flag for flag, action in options.items() if "no effect" in action.help]


@pytest.mark.parametrize("flags, message", [(["--dataset", "mpi3d"], "mpi3d_real.npz"),
                                            (["--dataset", "imagenet"], "unknown --dataset"),
                                            (["--dataset", "dsprites", "--data-k", "0"], "--data-k"),
                                            (["--model", "slowvae", "--box-norm", "1"], "--box-norm"),
                                            (["--specify", "mig"], "--specify"),
                                            (["--batch-size", "7"], "--batch-size"),
                                            (["--z-dim", "2"], "--z-dim"),
                                            (["--max-iter", "inf"], "--max-iter")])
def test_bad_settings_fail_at_once_with_one_line(tmp_path, flags, message):
    with pytest.raises(SystemExit) as e:
        main_kitti.main(["--data-dir", str(tmp_path / "no_data"), *flags])  # no pickle there: checked first
    assert message in str(e.value) and "\n" not in str(e.value)


def test_train_writes_run_layout_then_evaluate_scores_the_checkpoint(run, tmp_path):
    trained, = run("--max-iter", "4")
    run_dir = tmp_path / "out" / "kittimasks_1" / "1_0" / "2"
    ckpt = tmp_path / "ckpt" / "kittimasks_1" / "1_0" / "2" / "last"
    assert sorted(p.name for p in run_dir.iterdir()) == ["args.json", "checkpoint.pt", "final_scores.json",
                                                         "metrics.csv"]
    assert json.loads((run_dir / "args.json").read_text())["max_iter"] == 4
    assert [row["step"] for row in killing.rows_without_time(run_dir / "metrics.csv")] == ["0", "2", "4"]
    written = json.loads((run_dir / "final_scores.json").read_text())
    assert written["mcc"] == trained["mcc"] and np.shape(written["corr_matrix"]) == (10, 10)
    checkpoint = ckpt.read_bytes()
    evaluated, = run("--evaluate", "--max-iter", "1000")
    assert ckpt.read_bytes() == checkpoint and evaluated["iteration"] == 4
    assert evaluated["mcc"] == pytest.approx(trained["mcc"])


def test_metrics_flag_adds_scores_to_final_scores_and_evaluation(run, tmp_path, capsys):
    trained, = run("--max-iter", "2", "--metrics", "mig", "sap")
    written = json.loads((tmp_path / "out" / "kittimasks_1" / "1_0" / "2" / "final_scores.json").read_text())
    assert 0 <= written["mig"] <= 1 and 0 <= written["sap"] <= 1 and written["mig"] == trained["mig"]
    assert "mig " in capsys.readouterr().out
    evaluated, = run("--evaluate", "--metrics", "sap")
    assert evaluated["sap"] == pytest.approx(trained["sap"]) and "mig" not in evaluated


def test_resuming_a_finished_run_with_new_metrics_scores_them(run, tmp_path):
    """The stored scores stay, the new --metrics are scored (as --evaluate scores them) and kept in the checkpoint."""
    trained, = run("--max-iter", "2")
    resumed, = run("--max-iter", "2", "--resume", "--metrics", "sap")
    evaluated, = run("--evaluate", "--metrics", "sap")
    assert resumed["mcc"] == trained["mcc"] and resumed["sap"] == pytest.approx(evaluated["sap"])
    run_dir = tmp_path / "out" / "kittimasks_1" / "1_0" / "2"
    assert json.loads((run_dir / "final_scores.json").read_text())["sap"] == resumed["sap"]
    assert training_loop.read_resume_checkpoint(run_dir / "checkpoint.pt")["final_metrics"] == ["sap"]


TRAIN = ["--batch-size", "8", "--num-workers", "0", "--log-step", "2", "--save-step", "1", "--max-iter", "30"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(data_dir, tmp_path):
    """SIGKILLed at metrics row 2, its resumed run at row 8, then resumed to the end: a run left alone's scores."""
    def argv(name: str) -> list:
        return ["main_kitti.py", "--data-dir", data_dir, *TRAIN, "--output-dir", tmp_path / name / "out",
                "--ckpt-dir", tmp_path / name / "ckpt"]

    def in_process(*flags) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            main_kitti.main([*map(str, flags)])
        finally:
            torch.set_num_threads(threads)
    run_dir = Path("kittimasks_1") / "1_0" / "2"
    in_process(*argv("full")[1:])
    cut = tmp_path / "cut" / "out" / run_dir
    killing.kill_twice(argv("cut"), "--resume", cut / "metrics.csv", (2, 8))
    in_process(*argv("cut")[1:], "--resume")
    full = tmp_path / "full" / "out" / run_dir
    assert json.loads((cut / "final_scores.json").read_text()) == json.loads((full / "final_scores.json").read_text())
    assert killing.rows_without_time(cut / "metrics.csv") == killing.rows_without_time(full / "metrics.csv")


def test_resume_with_another_learning_rate_is_a_one_line_error(run):
    """The script exits with this message alone (SystemExit's text is what Python prints, without a traceback)."""
    run("--max-iter", "2")
    with pytest.raises(SystemExit) as refused:
        run("--max-iter", "2", "--lr", "0.001", "--resume")
    assert str(refused.value) == "error: checkpoint was trained with --lr 0.0001, this run has --lr 0.001"


def test_without_resume_an_existing_checkpoint_is_not_loaded(run, capsys):
    first, = run("--max-iter", "2")
    again, = run("--max-iter", "2")
    assert "starting afresh" in capsys.readouterr().out and again["mcc"] == first["mcc"]


def test_evaluate_without_or_with_a_mismatched_checkpoint_is_a_one_line_error(run):
    with pytest.raises(SystemExit, match="checkpoint not found"):
        run("--evaluate")
    run("--max-iter", "2")
    with pytest.raises(SystemExit, match="does not fit this model"):
        run("--evaluate", "--z-dim", "5")


def test_evaluate_loads_the_original_checkpoint_format(run, tmp_path):
    """{"iter", "model_states": {"net": BetaVAE_H state}}: the encoder under "encoder.", the box bound as
    SoftclipLayer's max_abs_bound (github.com/brendel-group/cl-ica, kitti_masks/solver.py and model.py)."""
    trained, = run("--max-iter", "2", "--box-norm", "1")
    ours = torch.load(tmp_path / "ckpt" / "kittimasks_1" / "1_1" / "2" / "last", weights_only=True)["model"]
    original = {"encoder." + k.replace("12.b", "12.max_abs_bound"): v for k, v in ours.items()}
    path = tmp_path / "ckpt" / "kittimasks_1" / "1_1" / "2" / "original"
    torch.save({"iter": 2, "model_states": {"net": original}, "optim_states": {"optim": {}}}, path)
    evaluated, = run("--evaluate", "--box-norm", "1", "--ckpt-name", "original")
    assert evaluated["iteration"] == 2 and evaluated["mcc"] == pytest.approx(trained["mcc"])


def test_random_seeds_write_one_result_per_seed_and_a_summary(run, tmp_path):
    results = run("--random-seeds", "--num_runs", "2", "--max-iter", "2")
    seeds = [r["seed"] for r in results]
    assert len(set(seeds)) == 2 and all(10**6 <= s < 10**7 for s in seeds)
    exp = tmp_path / "out" / "kittimasks_1" / "1_0"
    mccs = [json.loads((exp / str(s) / "final_scores.json").read_text())["mcc"] for s in seeds]
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["seeds"] == seeds and summary["mcc"] == mccs
    assert summary["mcc_mean"] == pytest.approx(np.mean(mccs)) and summary["mcc_std"] == pytest.approx(np.std(mccs))
    again = run("--random-seeds", "--num_runs", "2", "--evaluate")
    assert [r["mcc"] for r in again] == pytest.approx(mccs)


def test_random_search_records_drawn_slowvae_weights(run, tmp_path):
    result, = run("--random-search", "--num_runs", "1", "--max-iter", "0", "--search-beta")
    args = json.loads((tmp_path / "out" / "kittimasks_1" / "1_0" / str(result["seed"]) / "args.json").read_text())
    assert 1 <= args["beta"] <= 16 and 1 <= args["gamma"] <= 16 and 1 <= args["rate_prior"] <= 10


def test_use_writer_writes_tensorboard_loss_scalars(run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run("--max-iter", "4", "--use-writer")
    events = EventAccumulator(str(tmp_path / "logs" / "kittimasks_1" / "1_0" / "2")).Reload()
    assert [e.step for e in events.Scalars("mcc")] == [0, 2, 4]


def test_cuda_flag_says_which_device(run, capsys):
    run("--max-iter", "0", "--cuda")
    out = capsys.readouterr().out
    assert ("device: cuda" in out) if torch.cuda.is_available() else ("CUDA requested but not available" in out)


def script_flags(tmp_path, data_dir, *flags: str) -> list[str]:
    """main_kitti.py's flags for a small run writing under tmp_path."""
    return ["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "out"), "--ckpt-dir", str(tmp_path / "ckpt"),
            "--log-dir", str(tmp_path / "logs"), "--batch-size", "8", "--num-workers", "0", *flags]


def assert_refused(error: str, path: Path, marker: Path) -> None:
    """One line `error: ...` naming the file, and the payload did not run."""
    assert not marker.exists()
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and str(path) in error


def test_pickle_that_would_run_code_is_a_one_line_error(tmp_path, code_payload):
    """The script prints SystemExit's text alone (tests/test_main_mlp.py checks that in a fresh interpreter)."""
    payload, marker = code_payload
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / FILE_NAME).write_bytes(pickle.dumps({"pedestrians": payload, "pedestrians_latents": []}))
    with pytest.raises(SystemExit) as refused:
        main_kitti.main(script_flags(tmp_path, data_dir, "--max-iter", "2"))
    assert_refused(str(refused.value), data_dir / FILE_NAME, marker)


@pytest.mark.parametrize("mode, path", [(["--resume"], "out/kittimasks_1/1_0/2/checkpoint.pt"),
                                        (["--evaluate"], "ckpt/kittimasks_1/1_0/2/last")])
def test_checkpoint_that_would_run_code_is_a_one_line_error(tmp_path, data_dir, code_payload, mode, path):
    payload, marker = code_payload
    ckpt = tmp_path / path
    ckpt.parent.mkdir(parents=True)
    torch.save({"iteration": 1, "model": payload}, ckpt)
    with pytest.raises(SystemExit) as refused:
        main_kitti.main(script_flags(tmp_path, data_dir, "--max-iter", "2", *mode))
    assert_refused(str(refused.value), ckpt, marker)
