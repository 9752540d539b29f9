"""tools/table1_grid.py (cells skipped once finished, resumed from a checkpoint, tabulated) and
tools/plot_metrics.py (a PNG from metrics.csv files)."""
from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from PIL import Image

import losses
from tools import plot_metrics, table1_grid

SETTINGS = ["box_uniform_laplace_l1", "sphere_uniform_vmf10_dot"]
REAL_TRAIN = table1_grid.train  # before any test replaces it


def grid_args(tmp_path: Path, *extra: str):
    return table1_grid.get_args_parser().parse_args(
        ["--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs"), "--threads", "1",
         "--settings", *SETTINGS, "--seeds", "0", "1", *extra])


def fake_scores(args) -> dict:
    """Scores that differ per seed and setting, so the table's mean ± std is checked, not copied."""
    offset = 0.1 if args.space_type == "sphere" else 0.0
    return {"r2_mean": 0.5 + offset + 0.2 * args.seed, "r2_std": 0.01,
            "mcc_mean": 0.3 + offset + 0.1 * args.seed, "mcc_std": 0.02}


@pytest.fixture
def fake_main(monkeypatch):
    """Replace the main_mlp.py process by a stub that records its parsed arguments and writes a metrics.csv."""
    calls = []

    def train(argv, gpu):
        args = table1_grid.main_mlp.get_args_parser().parse_args(argv)
        calls.append(args)
        save_dir = Path(args.save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        (save_dir / "metrics.csv").write_text("phase,step,loss,mean_loss,r2,mcc,elapsed_s\n"
                                               "unsupervised,0,1,1,0.5,0.4,0.1\n")
        return fake_scores(args)

    monkeypatch.setattr(table1_grid, "train", train)
    return calls


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_runs_each_cell_once_and_tabulates_mean_std(tmp_path, fake_main):
    table1_grid.main(grid_args(tmp_path))
    assert sorted((a.space_type, a.seed) for a in fake_main) == [("box", 0), ("box", 1), ("sphere", 0), ("sphere", 1)]
    rows = read_rows(tmp_path / "out" / "runs.csv")
    assert len(rows) == 4
    table = (tmp_path / "out" / "table1.md").read_text()
    for name in SETTINGS:
        seeds = [a for a in fake_main if a.save_dir.endswith(f"{name}_seed{a.seed}")]
        r2 = [fake_scores(a)["r2_mean"] for a in seeds]
        mcc = [fake_scores(a)["mcc_mean"] for a in seeds]
        setting = table1_grid.SETTINGS_BY_NAME[name]
        line = next(line for line in table.splitlines() if line.startswith(f"| {setting.process} | {setting.model} |"))
        assert table1_grid.mean_std(r2) in line and table1_grid.mean_std(mcc) in line
        assert f"{np.mean(r2):.3f} ± {np.std(r2):.3f}" == table1_grid.mean_std(r2)
        assert (tmp_path / "out" / "metrics" / f"{name}_seed0.csv").is_file()

    fake_main.clear()
    table1_grid.main(grid_args(tmp_path))
    assert fake_main == []  # everything finished: nothing reruns

    kept = [r for r in rows if not (r["setting"] == SETTINGS[1] and r["seed"] == "1")]
    with open(tmp_path / "out" / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, table1_grid.RUN_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
    table1_grid.main(grid_args(tmp_path))
    assert [(a.space_type, a.seed) for a in fake_main] == [("sphere", 1)]  # only the missing cell
    assert len(read_rows(tmp_path / "out" / "runs.csv")) == 4


def test_two_jobs_run_cells_at_once_and_write_the_same_rows(tmp_path, fake_main, monkeypatch):
    """--jobs 2 (threads on the CPU): two cells overlap in time; runs.csv holds the rows of --jobs 1."""
    barrier = threading.Barrier(2, timeout=30)  # a cell waits until a second one runs beside it
    stub = table1_grid.train
    monkeypatch.setattr(table1_grid, "train", lambda argv, gpu: (barrier.wait(), stub(argv, gpu))[1])
    table1_grid.main(grid_args(tmp_path / "parallel", "--jobs", "2"))
    monkeypatch.setattr(table1_grid, "train", stub)
    table1_grid.main(grid_args(tmp_path / "serial"))

    def rows(folder):
        return sorted((r["setting"], r["seed"], r["r2_mean"], r["mcc_mean"], r["flags"])
                      for r in read_rows(folder / "out" / "runs.csv"))
    assert len(rows(tmp_path / "parallel")) == 4 and rows(tmp_path / "parallel") == rows(tmp_path / "serial")


def test_interrupted_cell_resumes_from_its_checkpoint(tmp_path, fake_main):
    run_dir = tmp_path / "runs" / "cpu" / f"{SETTINGS[0]}_seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"")
    table1_grid.main(grid_args(tmp_path))
    resumed = {(a.space_type, a.seed): a.resume_training for a in fake_main}
    assert resumed == {("box", 0): True, ("box", 1): False, ("sphere", 0): False, ("sphere", 1): False}


def test_scales_give_the_papers_flags_and_the_recipe(tmp_path):
    laplace = table1_grid.SETTINGS_BY_NAME["box_uniform_laplace_box_l1"]
    paper = table1_grid.main_mlp.get_args_parser().parse_args(table1_grid.cell_flags(laplace, "paper", 3, 1, []))
    assert (paper.n, paper.batch_size, paper.lr, paper.tau) == (10, 6144, 1e-4, 1.0)
    assert paper.n_steps * paper.more_unsupervised == 300003 and paper.box_norm and paper.seed == 3
    cpu = table1_grid.main_mlp.get_args_parser().parse_args(table1_grid.cell_flags(laplace, "cpu", 3, 1, []))
    assert cpu.tau == pytest.approx(0.05) and cpu.box_norm and cpu.only_unsupervised and cpu.n == 10
    assert (cpu.batch_size, cpu.n_steps) == (512, 6000)


@pytest.mark.parametrize("name, batch_size, n_steps", [("sphere_uniform_vmf10_dot", 2048, 4000),
                                                        ("box_uniform_gennorm3_l3", 512, 9000),
                                                        ("box_uniform_gennorm3_box_l1", 512, 9000),
                                                        ("box_uniform_normal_l3", 512, 6000)])
def test_row_flags_change_the_cpu_recipe_only(name, batch_size, n_steps):
    setting = table1_grid.SETTINGS_BY_NAME[name]
    parse = table1_grid.main_mlp.get_args_parser().parse_args
    cpu, paper = (parse(table1_grid.cell_flags(setting, scale, 0, 1, [])) for scale in ("cpu", "paper"))
    assert (cpu.batch_size, cpu.n_steps) == (batch_size, n_steps)
    assert (paper.batch_size, paper.n_steps) == (6144, 100001)


@pytest.mark.parametrize("c_p, c_param, logpdf", [
    (1, 0.05, scipy.stats.laplace(scale=0.05).logpdf),
    (2, 0.05, scipy.stats.norm(scale=0.05).logpdf),
    (3, 0.05, scipy.stats.gennorm(3, scale=0.05).logpdf),
])
def test_lp_matched_tau_turns_the_model_similarity_into_the_conditional_log_density(c_p, c_param, logpdf):
    d = np.array([0.0, 0.01, 0.03, 0.08])
    tau = table1_grid.lp_matched_tau(c_p, c_param)
    np.testing.assert_allclose(-np.abs(d) ** c_p / tau, logpdf(d) - logpdf(0.0), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("c_p, c_param", [(1, 0.05), (2, 0.05), (3, 0.05), (2, 1.0)])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_recipe_tau_gives_the_model_conditional_the_true_variance(c_p, c_param, p):
    """exp(−|d|^p/τ) is a generalized normal of scale τ^(1/p); its variance must equal the conditional's."""
    tau = table1_grid.recipe_tau(c_p, c_param, p)
    model_variance = scipy.stats.gennorm(p, scale=tau ** (1 / p)).var()
    true_variance = scipy.stats.gennorm(c_p, scale=c_param * (2 ** 0.5 if c_p == 2 else 1)).var()
    assert model_variance == pytest.approx(true_variance, rel=1e-9)


@pytest.mark.parametrize("conditional", ["laplace", "normal", "gennorm3"])
def test_cpu_tau_of_l3_is_the_recipe_tau_at_the_settled_output_scale(conditional):
    """The InfoNCE loss of outputs at the latents' scale under the CPU τ equals that of outputs at the settled
    scale s under recipe_tau (τ and the output scale are one parameter); other models keep recipe_tau."""
    c_p, c_param = (table1_grid.flag_value(table1_grid.CONDITIONALS[conditional][1], f) for f in ("--c-p", "--c-param"))
    tau = table1_grid.cpu_tau(c_p, c_param, 3)
    s = table1_grid.L3_SETTLED_SCALE
    anchor, positive, negatives = torch.rand(3, 64, 10, generator=torch.Generator().manual_seed(0))
    recipe = table1_grid.recipe_tau(c_p, c_param, 3)
    settled = losses.lp_info_nce(s * anchor, s * positive, s * negatives, p=3, tau=recipe)
    unit = losses.lp_info_nce(anchor, positive, negatives, p=3, tau=tau)
    assert tau > recipe
    torch.testing.assert_close(unit[0], settled[0], rtol=1e-5, atol=1e-4)
    for p in (1, 2):
        assert table1_grid.cpu_tau(c_p, c_param, p) == table1_grid.recipe_tau(c_p, c_param, p)
    setting = table1_grid.SETTINGS_BY_NAME[f"box_uniform_{conditional}_box_l3"]
    flags = table1_grid.cell_flags(setting, "cpu", 0, 1, [])
    assert float(flags[flags.index("--tau") + 1]) == pytest.approx(tau, rel=1e-5)


def test_recipe_tau_of_the_dot_product_is_one_over_kappa_for_vmf():
    assert table1_grid.recipe_tau(0, 10, 0) == pytest.approx(0.1)
    assert table1_grid.recipe_tau(2, 0.05, 0) == pytest.approx(0.05**2)  # Normal: tangent variance σ²


def fixture_run(setting: str, seed: int, r2: float, mcc: float) -> dict:
    return {"setting": setting, "seed": str(seed), "scale": "cpu", "r2_mean": str(r2), "r2_std": "0",
            "mcc_mean": str(mcc), "mcc_std": "0", "wall_s": "10", "steps": "30", "flags": ""}


def test_table_counts_seeds_reaching_the_claim_and_marks_incomplete_rows(tmp_path):
    vmf, laplace = "sphere_uniform_vmf10_dot", "box_uniform_laplace_l1"
    write_metrics(tmp_path / f"{vmf}_seed0.csv", [0.5, 0.95, 0.99])  # reaches 0.95·0.99 at the second row
    write_metrics(tmp_path / f"{vmf}_seed1.csv", [0.5, 0.6, 0.7])
    write_metrics(tmp_path / f"{laplace}_seed0.csv", [0.5, 1.0, 1.0])  # MCC = R²/2: never
    rows = [fixture_run(vmf, 0, 0.99, 0.5), fixture_run(vmf, 1, 0.7, 0.4), fixture_run(laplace, 0, 0.9, 0.5)]
    table = table1_grid.markdown_table(rows, "cpu", tmp_path, seeds=2).splitlines()
    vmf_line = next(line for line in table if "vMF(κ=10)" in line)
    laplace_line = next(line for line in table if "| box / uniform / Laplace(λ=0.05) | unbounded, L1 |" in line)
    assert "| 0.845 ± 0.145 |" in vmf_line and "| 1/2 | 1 s |" in vmf_line and vmf_line.endswith("| 2/2 |")
    assert "| 0/1 | never |" in laplace_line and laplace_line.endswith("| 1/2 incomplete |")
    assert sum("not run" in line for line in table) == len(table1_grid.SETTINGS) - 2
    assert len([line for line in table if line.startswith("| ") and "---" not in line]) == len(table1_grid.SETTINGS) + 2


def test_time_to_target_is_the_elapsed_time_of_the_first_logged_step_at_the_threshold(tmp_path):
    path = tmp_path / "m.csv"
    write_metrics(path, [0.2, 0.96, 0.5, 0.99])  # steps 0, 10, 20, 30; MCC = R²/2 never reaches 0.95
    assert table1_grid.time_to_target(path, "r2", 0.95) == pytest.approx(1.0)
    assert table1_grid.time_to_target(path, "mcc", 0.95) is None


TINY = ["--extra", "--n", "2", "--batch-size", "32", "--n-steps", "6", "--n-log-steps", "3",
        "--num-eval-batches", "2", "--encoder-scale", "0.1"]


@pytest.mark.slow
def test_real_cells_run_alone_and_side_by_side_score_the_same(tmp_path, monkeypatch):
    """A real tiny cell; and each cell is its own process: seed 0 run beside seed 1 draws the same numbers as
    seed 0 alone (cells run as threads of one process would share, and interleave, torch's global random stream).
    Alone, the cell trains in the test's process: main_mlp gives the same numbers there as in its own, on one thread."""
    def rows(folder: str, jobs: str, seeds: list[int]) -> list[dict]:
        args = grid_args(tmp_path / folder, "--jobs", jobs, *TINY)
        args.settings, args.seeds = ["box_uniform_laplace_l1"], seeds
        return sorted(table1_grid.main(args), key=lambda r: r["seed"])
    def in_process(argv: list[str], gpu: int | None) -> dict:
        return table1_grid.main_mlp.main(table1_grid.main_mlp.get_args_parser().parse_args(argv))["unsupervised"]
    with monkeypatch.context() as m:
        m.setattr(table1_grid, "train", in_process)
        (alone,) = rows("alone", "1", [0])
    assert alone["steps"] == "6" and 0 <= float(alone["mcc_mean"]) <= 1
    metrics = read_rows(tmp_path / "alone" / "out" / "metrics" / "box_uniform_laplace_l1_seed0.csv")
    assert [int(r["step"]) for r in metrics] == [0, 3, 5]
    beside, other = rows("beside", "2", [0, 1])
    assert (beside["r2_mean"], beside["mcc_mean"]) == (alone["r2_mean"], alone["mcc_mean"])
    assert other["mcc_mean"] != alone["mcc_mean"]  # seed 1 is another run


@pytest.mark.slow
def test_failed_cell_is_a_one_line_error_and_keeps_finished_rows(tmp_path, fake_main, monkeypatch):
    table1_grid.main(grid_args(tmp_path, "--seeds", "0"))
    monkeypatch.setattr(table1_grid, "train", lambda argv, gpu: REAL_TRAIN([*argv, "--n", "0"], gpu))
    with pytest.raises(SystemExit) as exit_info:
        table1_grid.main(grid_args(tmp_path, "--seeds", "1", "--settings", SETTINGS[0]))  # one real process
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "seed 1: main_mlp.py" in message and "exited with status" in message
    assert len(read_rows(tmp_path / "out" / "runs.csv")) == 2


def test_table_only_rewrites_the_table_without_running(tmp_path, fake_main):
    table1_grid.main(grid_args(tmp_path, "--seeds", "0"))
    fake_main.clear()
    (tmp_path / "out" / "table1.md").unlink()
    table1_grid.main(grid_args(tmp_path, "--seeds", "0", "1", "--table-only"))
    assert fake_main == []
    assert "1/2 incomplete" in (tmp_path / "out" / "table1.md").read_text()


def test_unknown_setting_is_a_one_line_error(tmp_path):
    args = grid_args(tmp_path)
    args.settings = ["box_uniform_cauchy"]
    with pytest.raises(SystemExit, match="unknown setting"):
        table1_grid.main(args)


def write_metrics(path: Path, r2: list[float]) -> None:
    rows = ["phase,step,loss,mean_loss,r2,mcc,elapsed_s", "supervised,0,1,1,0.9,0.9,0.1"]
    rows += [f"unsupervised,{10 * i},1,1,{v},{v / 2},{0.5 * (i + 1)}" for i, v in enumerate(r2)]
    path.write_text("\n".join(rows) + "\n")


def test_plot_metrics_writes_one_panel_per_setting(tmp_path):
    for name, r2 in [("a_seed0", [0.1, 0.5]), ("a_seed1", [0.2, 0.6]), ("b_seed0", [0.3, 0.9])]:
        write_metrics(tmp_path / f"{name}.csv", r2)
    files = sorted(str(p) for p in tmp_path.glob("*.csv"))
    assert {plot_metrics.group_name(Path(f)) for f in files} == {"a", "b"}
    assert plot_metrics.read_curve(Path(files[0]), "unsupervised")["step"] == [0.0, 10.0]
    out = tmp_path / "plots" / "scores.png"
    plot_metrics.main(plot_metrics.get_args_parser().parse_args([*files, "--out", str(out)]))
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > image.height  # two panels side by side


def test_plot_metrics_missing_file_is_a_one_line_error(tmp_path):
    args = plot_metrics.get_args_parser().parse_args([str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="not found"):
        plot_metrics.main(args)
