"""main_3dident.py on a small rendered dataset: flags and defaults, every ResNet encoder takes a step,
the three modes, the image-free sanity modes, checkpoint round trips, one-line errors, and a
two-process DistributedDataParallel run with gloo."""
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import disentanglement_utils
import losses
import main_3dident
from datasets.threedident_dataset import IMAGE_MEAN, IMAGE_STD
from tests import killing

pytestmark = pytest.mark.usefixtures("in_process_loading")  # in-process runs: no spawned data worker (conftest)
REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools" / "3dident"
# One faiss thread: with in_process_loading the test's own process searches, and faiss's OpenMP thread count is
# also torch's (16, the default, would slow every later test and change its rounding). The small conv encoder:
# building rn18 (11 M weights) and running it cost a test seconds; the tests that need rn18 ask for it.
TINY = ["--batch-size", "8", "--n-eval-samples", "16", "--workers", "1", "--no-cuda",
        "--non-periodic-rotation-and-color", "--faiss-omp-threads", "1", "--encoder", "conv"]


def import_tool(name: str):
    """Import a tools/3dident script as a module (its folder is on sys.path while it is imported)."""
    sys.path.insert(0, str(TOOLS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(TOOLS))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """64 renders of 32×32 pixels (non-periodic variant), made by the tools."""
    root = tmp_path_factory.mktemp("3dident") / "data"
    import_tool("generate_latents").main([str(root), "--n", "64"])
    assert import_tool("render_dataset").render_folder(root, size=32) == 64
    return root


@pytest.fixture(scope="module")
def latents_only(rendered, tmp_path_factory):
    root = tmp_path_factory.mktemp("latents_only")
    (root / "raw_latents.npy").write_bytes((rendered / "raw_latents.npy").read_bytes())
    return root


def run(capsys, *argv) -> list[str]:
    main_3dident.main([str(a) for a in argv])
    return capsys.readouterr().out.splitlines()


def score_lines(lines: list[str]) -> list[str]:
    """The training log lines: "step N: loss … mean loss … R² … MCC … | MSE … | lin. MSE …"."""
    return [line for line in lines if line.startswith("step ")]


def step_of(line: str) -> str:
    return line.split(":")[0].split()[1]


def test_seed_listing_flags_and_defaults():
    args = main_3dident.get_args_parser().parse_args(["--offline-dataset", "d"])
    expected = dict(batch_size=512, n_eval_samples=4096, lr=1e-4, optimizer="adam", iterations=30000,
                    n_log_steps=100, load_model=None, save_model=None, save_every=None, faiss_omp_threads=16,
                    box_constraint=None, sphere_constraint=None, workers=0, mode="supervised",
                    supervised_loss="mse", unsupervised_loss="l2", non_periodical_conditional="l2", sigma=0.1,
                    encoder="rn18", seed=0, image_normalisation="released", image_stats=None)
    assert {k: getattr(args, k) for k in expected} == expected
    switches = ["no_cuda", "position_only", "rotation_and_color_only", "rotation_only", "color_only",
                "no_spotlight_position", "no_spotlight_color", "no_spotlight", "non_periodic_rotation_and_color",
                "dummy_mixing", "identity_solution", "identity_mixing_and_solution", "approximate_dataset_nn_search"]
    assert not any(getattr(args, s) for s in switches)


def resnet_encoder(name: str) -> tuple:
    """(the contrastive loss, the encoder) of `--encoder name` with the learnable box."""
    args = main_3dident.get_args_parser().parse_args(
        ["--offline-dataset", "d", "--encoder", name, "--box-constraint", "learnable"])
    layout = main_3dident.check_args(args)
    return main_3dident.contrastive_loss(args, layout), main_3dident.build_encoder(args, layout)


@pytest.mark.parametrize("name", ["rn18", "rn50"])
def test_resnet_encoders_take_a_step(name):
    loss_fn, f = resnet_encoder(name)
    x, x_tilde = torch.randn(2, 4, 3, 32, 32)
    before = f[0][2].weight.detach().clone()
    optimizer = torch.optim.Adam(f.parameters(), lr=1e-3)
    loss = loss_fn(f(x), f(x_tilde))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, f[0][2].weight)


@pytest.mark.parametrize("name, blocks", [("rn18", 2), ("rn50", 6), ("rn101", 23), ("rn151", 36), ("rn152", 36)])
def test_every_resnet_flag_builds_its_depth(name, blocks):
    """Built on the meta device (shapes, no weights: the deep ones' steps cost seconds and run the bottleneck
    blocks that rn50's step runs). rn151 is ResNet-152, as in the original."""
    with torch.device("meta"):
        _, f = resnet_encoder(name)
    assert len(f[0][0].layer3) == blocks


def test_periodic_model_normalises_each_block():
    args = main_3dident.get_args_parser().parse_args(["--offline-dataset", "d", "--box-constraint", "fix"])
    layout = main_3dident.check_args(args)
    h = main_3dident.output_normalization(args, layout)(torch.randn(5, layout.dim) * 3)
    assert layout.n_box == 3 and layout.n_sphere == 8
    assert (h[:, :3] > 0).all() and (h[:, :3] < 1).all()
    assert torch.allclose(h[:, 3:].norm(dim=1), torch.ones(5))


def test_images_are_normalised_on_the_device():
    """The loader sends uint8 images; build_mixing's image path makes them float32 (x/255 − mean)/std."""
    args = main_3dident.get_args_parser().parse_args(["--offline-dataset", "d"])
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mixed = main_3dident.build_mixing(args, 11, torch.device("cpu"), (IMAGE_MEAN, IMAGE_STD))(torch.zeros(4, 11), x)
    expected = (x.float() / 255 - torch.tensor(IMAGE_MEAN).view(3, 1, 1)) / torch.tensor(IMAGE_STD).view(3, 1, 1)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, expected, rtol=0, atol=1e-6)


def test_tau_and_box_init_reach_the_loss_and_the_box():
    """--tau divides every similarity (the loss equals losses.info_nce with that τ); --box-init is b's start."""
    args = main_3dident.get_args_parser().parse_args(
        ["--offline-dataset", "d", "--non-periodic-rotation-and-color", "--box-constraint", "learnable",
         "--tau", "0.05", "--box-init", "7", "--encoder", "conv"])
    layout = main_3dident.check_args(args)
    f = main_3dident.build_encoder(args, layout)
    torch.testing.assert_close(f[1].b.detach(), torch.full((10,), 7.0))
    h1, h2 = torch.rand(2, 6, 10)
    expected = losses.info_nce(h1, h2, torch.roll(h1, 1, 0), 2, 0.05).mean()
    torch.testing.assert_close(main_3dident.contrastive_loss(args, layout)(h1, h2), expected)
    assert not torch.allclose(expected, losses.info_nce(h1, h2, torch.roll(h1, 1, 0), 2, 1.0).mean())


@pytest.mark.parametrize("mode, extra", [("supervised", []), ("supervised", ["--supervised-loss", "r2"]),
                                         ("unsupervised", ["--box-constraint", "learnable"]),
                                         ("unsupervised", ["--unsupervised-loss", "vmf"]),
                                         ("unsupervised", ["--approximate-dataset-nn-search"]),
                                         ("unsupervised", ["--encoder", "rn18", "--box-constraint", "learnable"])])
def test_training_modes_run(capsys, rendered, mode, extra):
    lines = run(capsys, "--offline-dataset", rendered, "--mode", mode, *TINY, "--iterations", "2",
                "--n-log-steps", "1", *extra)
    steps = score_lines(lines)
    assert [step_of(line) for line in steps] == ["0", "1", "2"]
    assert all(np.isfinite(float(line.split("mean loss")[1].split()[0])) for line in steps[1:])


def test_the_image_cache_changes_nothing_but_the_reading(capsys, rendered, tmp_path):
    """--image-cache: the same batches, hence the same losses and scores, in training and in test mode."""
    folder = tmp_path / "data"
    shutil.copytree(rendered, folder)
    train = ["--offline-dataset", folder, "--mode", "unsupervised", *TINY, "--iterations", "2", "--n-log-steps", "1"]
    cached = score_lines(run(capsys, *train, "--image-cache"))
    assert len(cached) == 3 and cached == score_lines(run(capsys, *train))
    test = ["--offline-dataset", folder, "--mode", "test", *TINY]
    assert run(capsys, *test, "--image-cache")[-1] == run(capsys, *test)[-1]
    assert (folder / "images_uint8.npy").is_file()


def test_test_mode_scores_every_image_in_order_deterministically(capsys, rendered):
    first = run(capsys, "--offline-dataset", rendered, "--mode", "test", *TINY)[-1]
    second = run(capsys, "--offline-dataset", rendered, "--mode", "test", *TINY, "--batch-size", "5")[-1]
    assert first.startswith("test set: 64 images, in order") and first == second


def test_per_latent_r2_averages_to_the_r2():
    """scores(): the R² is the uniform average of the per-latent R² (sklearn's r2_score convention)."""
    z = torch.rand(400, 3)
    hz = torch.stack([z[:, 0], z[:, 1] + 0.3 * torch.randn(400), torch.randn(400)], 1)
    s = main_3dident.scores(z, hz)
    assert s["r2_latents"][0] > 0.99 and 0.2 < s["r2_latents"][1] < 0.9 and abs(s["r2_latents"][2]) < 0.05
    assert s["r2"] == pytest.approx(float(np.mean(s["r2_latents"])))


def test_constant_latents_are_left_out_of_the_scores():
    """A constant latent (a fixed spotlight) neither inflates the R² (sklearn scores a perfectly predicted
    constant 1) nor deflates the MCC (it correlates with nothing): the scores are those of the others."""
    z = torch.rand(400, 3)
    hz = torch.stack([z[:, 0], z[:, 2] + 0.3 * torch.randn(400), torch.randn(400)], 1)
    with_constant = main_3dident.scores(torch.cat([z[:, :1], torch.full((400, 1), 0.5), z[:, 2:]], 1), hz)
    (r2, _), _ = disentanglement_utils.linear_disentanglement(z[:, [0, 2]], hz, train_test_split=True)
    (mcc, _), _ = disentanglement_utils.permutation_disentanglement(z[:, [0, 2]], hz)
    assert np.isnan(with_constant["r2_latents"][1]) and np.isnan(with_constant["lin_mse"][1])
    assert with_constant["r2"] == pytest.approx(r2) and with_constant["mcc"] == pytest.approx(mcc)
    assert with_constant["r2"] < 0.9


def test_folder_normalisation_uses_the_training_folders_stats(capsys, rendered, tmp_path):
    """--image-normalisation folder: training reads <offline-dataset>/image_stats.json (args.json records the
    file and its values), test mode the file --image-stats names; the scores differ from those with the
    released constants."""
    import_tool("image_stats").main([str(rendered)])
    stats = rendered / "image_stats.json"
    model, run_folder = tmp_path / "model.pt", tmp_path / "run"
    lines = run(capsys, "--offline-dataset", rendered, "--mode", "unsupervised", *TINY, "--iterations", "2",
                "--n-log-steps", "1", "--image-normalisation", "folder", "--output-dir", run_folder,
                "--save-model", model)
    assert any(line.startswith("images: normalised with mean (0.3") and str(stats) in line for line in lines)
    assert len(score_lines(lines)) == 3
    recorded = json.loads((run_folder / "args.json").read_text())
    assert (recorded["image_normalisation"], recorded["image_stats"]) == ("folder", str(stats))
    written = json.loads(stats.read_text())
    assert recorded["inputs"] == {"image_mean": written["mean"], "image_std": written["std"]}  # the values, too
    test = ["--offline-dataset", rendered, "--mode", "test", *TINY, "--load-model", model]
    folder = run(capsys, *test, "--image-normalisation", "folder", "--image-stats", stats)[-1]
    assert folder.startswith("test set: 64 images") and folder != run(capsys, *test)[-1]


def test_sanity_modes_need_no_images_and_never_ask(capsys, monkeypatch, latents_only):
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("input() called"))
    base = ["--offline-dataset", latents_only, *TINY, "--iterations", "2", "--n-log-steps", "1"]
    assert len(score_lines(run(capsys, *base, "--mode", "unsupervised", "--dummy-mixing"))) == 3
    entangled = score_lines(run(capsys, *base, "--dummy-mixing", "--identity-solution"))
    assert len(entangled) == 3 and "R² 1.0000" not in entangled[-1]
    flags = ["--identity-mixing-and-solution", "--n-eval-samples", "64"]  # enough samples for the half-split fit
    perfect = score_lines(run(capsys, *base, "--mode", "unsupervised", *flags))[-1]
    assert "R² 1.0000 MCC 1.0000 | MSE [0.0, " in perfect
    assert "R2 1.0000 | MCC 1.0000 | MSE [0.000" in run(capsys, *base, "--mode", "test", *flags)[-1]


def test_metrics_flag_scores_the_final_model_and_the_test_set(capsys, latents_only, tmp_path):
    """--metrics: the perfect h(z) = z scores DCI 1 in final_scores.json and in test mode's line; logged rows
    (metrics.csv) keep their columns."""
    base = ["--offline-dataset", latents_only, *TINY, "--iterations", "2", "--n-log-steps", "1",
            "--identity-mixing-and-solution", "--n-eval-samples", "64", "--metrics", "dci"]
    run(capsys, *base, "--mode", "unsupervised", "--output-dir", tmp_path)
    final = json.loads((tmp_path / "final_scores.json").read_text())
    assert final["dci_disentanglement"] == pytest.approx(1.0) and final["dci_completeness"] == pytest.approx(1.0)
    assert "dci_disentanglement" not in (tmp_path / "metrics.csv").read_text()
    assert "| dci_disentanglement 1.0000 | dci_completeness 1.0000" in run(capsys, *base, "--mode", "test")[-1]


def test_checkpoints_round_trip(capsys, rendered, tmp_path):
    model = tmp_path / "ckpt" / "model.pt"
    run(capsys, "--offline-dataset", rendered, "--mode", "unsupervised", *TINY, "--iterations", "2",
        "--n-log-steps", "2", "--save-model", model, "--save-every", "1")
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.pt", "model.pt.iteration_1",
                                                              "model.pt.iteration_2"]
    assert [torch.load(p, weights_only=True)["step"] for p in sorted(model.parent.iterdir())] == [2, 1, 2]
    test = ["--offline-dataset", str(rendered), "--mode", "test", *TINY]
    loaded = [run(capsys, *test, "--load-model", model)[-1] for _ in range(2)]
    untrained = run(capsys, *test)[-1]
    assert loaded[0] == loaded[1] != untrained
    args = main_3dident.get_args_parser().parse_args(test)
    layout = main_3dident.check_args(args)
    f, g = main_3dident.build_encoder(args, layout), main_3dident.build_encoder(args, layout)
    main_3dident.load(f, str(model))
    main_3dident.load(g, str(model.with_name("model.pt.iteration_2")))
    assert all(torch.equal(a, b) for a, b in zip(f.state_dict().values(), g.state_dict().values()))


@pytest.mark.parametrize("argv, message", [
    (["--offline-dataset", "{tmp}/missing"], "dataset folder not found"),
    (["--offline-dataset", "{tmp}"], "raw_latents.npy is missing"),
    (["--offline-dataset", "{rendered}", "--non-periodic-rotation-and-color", "--mode", "test"], None),
    (["--offline-dataset", "{rendered}"], "has 10 latent columns but the chosen flags need 11"),
    (["--offline-dataset", "{short}", "--non-periodic-rotation-and-color"], "lacks 4 of the 64 images"),
    (["--offline-dataset", "{constant}", "--non-periodic-rotation-and-color", "--mode", "test"],
     "cannot score {tmp}/constant: every latent is constant"),
    (["--offline-dataset", "{rendered}", "--rotation-only"], "need --non-periodic-rotation-and-color"),
    (["--offline-dataset", "{rendered}", "--save-every", "5"], "--save-every needs"),
    (["--offline-dataset", "{rendered}", "--identity-solution"], "needs --dummy-mixing"),
    (["--offline-dataset", "{rendered}", "--box-constraint", "fix", "--sphere-constraint", "fix"], "at most one"),
    (["--offline-dataset", "{rendered}", "--non-periodic-rotation-and-color", "--mode", "test",
      "--load-model", "{tmp}/none.pt"], "checkpoint not found"),
    (["--offline-dataset", "{rendered}", "--amp", "fp16", "--no-cuda"], "--amp fp16 needs CUDA"),
    (["--offline-dataset", "{rendered}", "--dist-backend", "nccl", "--no-cuda"], "nccl needs one GPU per rank"),
    (["--offline-dataset", "{rendered}", "--image-stats", "{tmp}/s.json"], "--image-stats needs --image-normalisation"),
    (["--offline-dataset", "{rendered}", "--non-periodic-rotation-and-color", "--image-normalisation", "folder",
      "--image-stats", "{tmp}/none.json"],
     "image statistics file {tmp}/none.json not found (make it with: python tools/3dident/image_stats.py {tmp})"),
    (["--offline-dataset", "{rendered}", "--non-periodic-rotation-and-color", "--image-normalisation", "folder",
      "--image-stats", "{tmp}/bad.json"], "image statistics file {tmp}/bad.json needs \"mean\" and \"std\""),
])
def test_bad_input_is_a_one_line_error(capsys, rendered, tmp_path, argv, message):
    short = tmp_path / "short"
    (short / "images").mkdir(parents=True)
    (short / "raw_latents.npy").write_bytes((rendered / "raw_latents.npy").read_bytes())
    for png in sorted((rendered / "images").iterdir())[:60]:
        (short / "images" / png.name).write_bytes(png.read_bytes())
    constant = tmp_path / "constant"  # every image labelled with the first one's latents
    shutil.copytree(rendered / "images", constant / "images")
    np.save(constant / "raw_latents.npy", np.repeat(np.load(rendered / "raw_latents.npy")[:1], 64, axis=0))
    (tmp_path / "bad.json").write_text('{"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}')
    argv = [a.format(tmp=tmp_path, rendered=rendered, short=short, constant=constant) for a in argv] + ["--workers", "1"]
    message = message and message.format(tmp=tmp_path)
    if message is None:  # the well-formed call of the list: it must run
        assert run(capsys, *argv)[-1].startswith("test set: 64 images")
        return
    with pytest.raises(SystemExit) as exit_info:
        main_3dident.main(argv)
    text = str(exit_info.value.code)
    assert text.startswith("error: ") and "\n" not in text and message in text


def test_global_batch_that_does_not_split_over_the_ranks_is_a_one_line_error(monkeypatch, rendered):
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it
    with pytest.raises(SystemExit) as exit_info:
        main_3dident.main(["--offline-dataset", str(rendered), *TINY])
    assert exit_info.value.code == "error: --batch-size 8 is the global batch: it must divide evenly over the 3 ranks"


def test_bf16_trains_on_the_cpu_close_to_float32(capsys, rendered):
    """--amp bf16 (autocast on the CPU): finite losses, scores near those of float32 after a few steps."""
    base = ["--offline-dataset", rendered, "--mode", "unsupervised", *TINY, "--iterations", "4", "--n-log-steps", "2",
            "--n-eval-samples", "64"]
    values = {}
    for amp in ("none", "bf16"):
        last = score_lines(run(capsys, *base, "--amp", amp))[-1]
        values[amp] = [float(v) for v in re.findall(r"(?:loss|R²|MCC) (-?[\d.]+)", last)]
    assert len(values["bf16"]) == 4 and all(np.isfinite(values["bf16"]))
    np.testing.assert_allclose(values["bf16"], values["none"], atol=0.05)


def test_load_model_that_would_run_code_is_a_one_line_error(rendered, tmp_path, code_payload):
    payload, marker = code_payload
    model = tmp_path / "model.pt"
    torch.save({"model": payload, "step": 1}, model)
    with pytest.raises(SystemExit) as refused:
        main_3dident.main(["--offline-dataset", str(rendered), "--mode", "test", *TINY, "--load-model", str(model)])
    assert not marker.exists()
    assert len(str(refused.value).splitlines()) == 1 and str(refused.value).startswith(f"error: checkpoint {model}")


def metrics(folder: Path) -> tuple[np.ndarray, dict]:
    """(loss, mean loss, R², MCC of each logged step), final scores of a run folder."""
    rows = killing.rows_without_time(folder / "metrics.csv")
    return (np.array([[float(r[k]) for k in ("loss", "mean_loss", "r2", "mcc")] for r in rows]),
            json.loads((folder / "final_scores.json").read_text()))


@pytest.mark.slow
def test_two_ranks_train_as_one_process_on_the_global_batch(rendered, tmp_path):
    """torchrun with 2 gloo ranks of 4 pairs = one process with batch 8: the same global batches, negatives
    from the whole batch, batch norm over it, scores over all samples (paper §5.3 contrasts all pairs).
    SGD: Adam's first steps (≈ lr·sign(g)) and batch norm over 8 samples amplify rounding-level differences within
    20 steps, as much as a second thread in one process does (tests/test_distributed_utils.py checks loss and
    gradients of one step). The scores are fits on 64 samples: compared to 1e-4 absolute. The small conv encoder
    (batch norm in every block) rather than rn18: gloo would spend seconds reducing rn18's 11 M gradients.
    The image-free --dummy-mixing run on 2 ranks is checked through submitit's rendezvous instead
    (tests/test_tools_launcher.py)."""
    argv = ["--offline-dataset", rendered, "--mode", "unsupervised", *TINY, "--box-constraint", "learnable", "--lr",
            "1e-4", "--optimizer", "sgd", "--iterations", "20", "--n-log-steps", "5", "--n-eval-samples", "64"]
    main_3dident.main([str(a) for a in [*argv, "--output-dir", tmp_path / "one"]])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main_3dident.py", *map(str, argv), "--output-dir", str(tmp_path / "two")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, env=killing.ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torchrun: global batch 8 = 2 ranks × 4 pairs" in result.stdout
    (one, one_final), (two, two_final) = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(one) == 5 and np.isfinite(one[1:]).all() and len(set(one[1:, 0])) == 4
    np.testing.assert_allclose(two[1:, :2], one[1:, :2], rtol=1e-5)  # losses (row 0: none yet)
    np.testing.assert_allclose(two[:, 2:], one[:, 2:], rtol=1e-5, atol=1e-4)  # R², MCC
    for key in one_final:  # per-latent R² of a 10-feature fit on 32 samples amplify rounding (values reach −10)
        np.testing.assert_allclose(two_final[key], one_final[key], rtol=1e-5,
                                   atol=1e-3 if key == "r2_latents" else 1e-4)


RESUMABLE = [*TINY, "--mode", "unsupervised", "--dummy-mixing", "--iterations", "20", "--n-log-steps", "2",
             "--save-every", "1"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(capsys, latents_only, tmp_path):
    """SIGKILLed at metrics row 2, its resumed run at row 6 (both forked from this process), then resumed to the
    end here: the scores and metrics of a run left alone."""
    def argv(name: str) -> list:
        return ["main_3dident.py", "--offline-dataset", latents_only, *RESUMABLE, "--output-dir", tmp_path / name,
                "--save-model", tmp_path / name / "model.pt"]
    run(capsys, *argv("full")[1:])
    killing.kill_twice(argv("cut"), "--resume", tmp_path / "cut" / "metrics.csv", (2, 6))
    run(capsys, *argv("cut")[1:], "--resume")
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert json.loads((cut / "final_scores.json").read_text()) == json.loads((full / "final_scores.json").read_text())
    assert killing.rows_without_time(cut / "metrics.csv") == killing.rows_without_time(full / "metrics.csv")
    assert sorted(json.loads((full / "args.json").read_text())["environment"]) == [
        "device", "git_commit", "numpy", "torch", "world_size"]


def test_resume_with_another_learning_rate_is_a_one_line_error(capsys, latents_only, tmp_path):
    """The script exits with this message alone (SystemExit's text is what Python prints, without a traceback)."""
    base = ["--offline-dataset", latents_only, *TINY, "--mode", "unsupervised", "--dummy-mixing", "--iterations", "2",
            "--output-dir", tmp_path]
    run(capsys, *base)
    with pytest.raises(SystemExit) as refused:
        run(capsys, *base, "--lr", "0.001", "--resume")
    assert str(refused.value) == "error: checkpoint was trained with --lr 0.0001, this run has --lr 0.001"


def test_the_original_checkpoint_format_loads(capsys, rendered, tmp_path):
    """The original saves f.state_dict() of DataParallel(Sequential(resnet, LeakyReLU, Linear, rescaling))
    (github.com/brendel-group/cl-ica, main_3dident.py): "module." keys, the box bound as max_abs_bound."""
    model = tmp_path / "model.pt"
    train = ["--offline-dataset", rendered, "--mode", "unsupervised", *TINY, "--encoder", "rn18", "--box-constraint",
             "learnable"]
    run(capsys, *train, "--iterations", "1", "--save-model", model)
    ours = torch.load(model, weights_only=True)["model"]
    original = {}
    for key, value in ours.items():
        top, rest = key.split(".", 1)
        original["module." + (rest if top == "0" else "3." + rest.replace("b", "max_abs_bound"))] = value
    torch.save(original, tmp_path / "original.pth")
    test = ["--offline-dataset", rendered, "--mode", "test", *TINY, "--encoder", "rn18", "--box-constraint",
            "learnable"]
    assert run(capsys, *test, "--load-model", model)[-1] == run(capsys, *test, "--load-model",
                                                                 tmp_path / "original.pth")[-1]


def test_data_workers_follow_the_cpus_this_process_may_use(monkeypatch):
    """--workers 0 on a node of 64 CPUs whose job was given 4, with 2 ranks on it: 2 workers per rank."""
    monkeypatch.setattr(main_3dident.distributed_utils.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(main_3dident.distributed_utils.os, "cpu_count", lambda: 64)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")

    def workers(*flags: str) -> int:
        return main_3dident.data_workers(main_3dident.get_args_parser().parse_args(["--offline-dataset", "d", *flags]))
    assert (workers(), workers("--workers", "3"), workers("--dummy-mixing")) == (2, 3, 0)
