"""tools/launcher.py, tools/jobs.py and tools/submit_train.py with submitit's local executor: grid cells as jobs
give the rows of the local run (also when one is preempted and requeued midway, and when the tool exits after
submitting and a later call collects), two local tasks train as one torchrun group, and the one-line errors."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import main_3dident
from tests import killing, launcher_cells
from tests.test_threedident_main import TINY, import_tool, metrics
from tests.test_tools_table1 import fake_main, grid_args, read_rows  # noqa: F401  (fake_main: a fixture)
from tools import jobs, kitti_table, launcher, submit_train, table1_grid
from tools.jobs import ToolCell
from tools.kitti_masks.make_synthetic import WalkConfig, write_synthetic

KITTI = ["--models", "infonce_l1_box", "--delta-ts", "1", "--seeds", "0", "--max-iter", "60", "--batch-size", "8"]
LOCAL_JOBS = ["--launcher", "submitit", "--cluster", "local", "--array-parallelism", "2"]


def kitti(folder: Path, data: Path, *extra: str) -> None:
    kitti_table.main(kitti_table.get_args_parser().parse_args(
        ["--data-dir", str(data), *KITTI, "--out", str(folder / "out"), "--runs-dir", str(folder / "runs"), *extra]))


def job_task_pid(record: Path) -> int:
    """The job's task process: the one child of the local executor's controller (whose pid is the job id)."""
    controller = json.loads(record.read_text())["job_id"]
    children = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.fixture(scope="module")
def kitti_runs(tmp_path_factory):
    """A KITTI cell run here and as a local job: submitted with --no-wait, the job preempted (SIGUSR2) once its
    first checkpoint is written, then collected by a second call that waits. One cell: each job is a fresh
    interpreter (seconds of imports); collecting several jobs, one of them failed, is
    test_failed_cell_is_one_line_naming_its_log_and_the_other_rows_are_kept."""
    root = tmp_path_factory.mktemp("kitti_jobs")
    write_synthetic(str(root / "data"), 8, seed=0, config=WalkConfig(max_len=12))
    kitti(root / "local", root / "data")
    kitti(root / "jobs", root / "data", *LOCAL_JOBS, "--no-wait")
    submitted = kitti_table.read_runs(root / "jobs" / "out" / "runs.csv")
    checkpoint = root / "jobs" / "runs" / "outputs" / "infonce_l1_box_dt1" / "0" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(job_task_pid(root / "jobs" / "runs" / "submitit" / "cells" / "infonce_l1_box_dt1_seed0.json"),
            signal.SIGUSR2)
    preempted_while_training = not (checkpoint.parent / "final_scores.json").is_file()
    launcher.POLL_S["local"], poll = 0.1, launcher.POLL_S["local"]
    try:
        kitti(root / "jobs", root / "data", *LOCAL_JOBS)
    finally:
        launcher.POLL_S["local"] = poll
    logs = "".join(p.read_text() for p in (root / "jobs" / "runs" / "submitit").glob("*_log.*"))
    return SimpleNamespace(root=root, submitted=submitted, preempted_while_training=preempted_while_training, logs=logs)


def scores(folder: Path) -> list[tuple]:
    """(seed, MCC, R², flags with the folder's name as `<folder>`) of each row."""
    return sorted((r["seed"], r["mcc"], r["r2"], r["flags"].replace(str(folder), "<folder>"))
                  for r in kitti_table.read_runs(folder / "out" / "runs.csv"))


@pytest.mark.slow
def test_cells_as_jobs_give_the_rows_of_the_local_run_and_a_later_call_collects_them(kitti_runs):
    assert kitti_runs.submitted == []  # --no-wait: the tool returned before any job finished
    assert len(scores(kitti_runs.root / "jobs")) == 1
    assert scores(kitti_runs.root / "jobs") == scores(kitti_runs.root / "local")
    assert "(1/1 seeds) |" in (kitti_runs.root / "jobs" / "out" / "kitti_table.md").read_text()
    assert not list((kitti_runs.root / "jobs" / "runs" / "submitit" / "cells").iterdir())  # all collected


@pytest.mark.slow
def test_preempted_job_is_requeued_and_resumes_to_the_same_scores(kitti_runs):
    assert kitti_runs.preempted_while_training
    assert "Requeued job" in kitti_runs.logs and "resuming" in kitti_runs.logs and "at iteration 0" in kitti_runs.logs
    cell = Path("outputs") / "infonce_l1_box_dt1" / "0" / "metrics.csv"
    assert killing.rows_without_time(kitti_runs.root / "jobs" / "runs" / cell) == \
        killing.rows_without_time(kitti_runs.root / "local" / "runs" / cell)


class InProcessExecutor:
    """submitit's executor as the launcher uses it, running each job at once in this process (the cell writes its
    outcome file as in a job; for the tools' wiring with a fake main_mlp)."""
    cluster = "local"

    def __init__(self, folder: Path):
        self.folder, self.jobs = folder, 0

    def batch(self):
        return open(os.devnull)  # any context manager

    def submit(self, cell) -> SimpleNamespace:
        self.jobs += 1
        cell()
        return SimpleNamespace(job_id=str(self.jobs),
                               paths=SimpleNamespace(folder=self.folder, stderr=self.folder / f"{self.jobs}_0_log.err"))


def test_table1_cells_as_jobs_write_the_rows_of_jobs_2(tmp_path, fake_main, monkeypatch):
    table1_grid.main(grid_args(tmp_path / "jobs2", "--jobs", "2"))
    monkeypatch.setattr(launcher, "make_executor", lambda args, folder, **shape: InProcessExecutor(folder))
    table1_grid.main(grid_args(tmp_path / "submitit", "--launcher", "submitit"))

    def rows(folder):
        return sorted((r["setting"], r["seed"], r["r2_mean"], r["mcc_mean"], r["flags"])
                      for r in read_rows(folder / "out" / "runs.csv"))
    assert len(rows(tmp_path / "submitit")) == 4 and rows(tmp_path / "submitit") == rows(tmp_path / "jobs2")
    assert len(list((tmp_path / "submitit" / "out" / "metrics").iterdir())) == 4


def launcher_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    launcher.add_launcher_args(parser)
    return parser.parse_args(argv)


class QueueingExecutor(InProcessExecutor):
    """An executor whose jobs stay queued: it keeps the submitted cells and runs none."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.cells = []

    def submit(self, cell) -> SimpleNamespace:
        self.cells.append(cell)
        return SimpleNamespace(job_id=str(len(self.cells)), paths=SimpleNamespace(folder=self.folder,
                                                                                  stderr=self.folder / "log.err"))


def test_local_no_wait_submits_every_cell_with_the_parallelism_as_their_limit(tmp_path, monkeypatch):
    executor = QueueingExecutor(tmp_path)
    monkeypatch.setattr(launcher, "make_executor", lambda args, folder, **shape: executor)
    cells = {f"cell{k}": (launcher_cells.row, (k,)) for k in range(3)}
    args = launcher_args("--cluster", "local", "--array-parallelism", "2", "--no-wait")
    assert launcher.run_jobs(cells, [].append, args, tmp_path) == []
    assert [cell.args for cell in executor.cells] == [(0,), (1,), (2,)]
    assert {cell.slots for cell in executor.cells} == {(str(tmp_path / "slots"), 2)}
    assert sorted(p.stem for p in (tmp_path / "cells").iterdir()) == list(cells)


def test_a_local_slot_is_held_by_one_job_at_a_time(tmp_path, monkeypatch):
    """--array-parallelism 1 of local jobs: a cell waits while another holds the slot."""
    monkeypatch.setattr(jobs, "SLOT_POLL_S", 0.01)
    cell = ToolCell(launcher_cells.row, (3,), tmp_path / "row.json", (str(tmp_path / "slots"), 1))
    with jobs.local_slot(tmp_path / "slots", 1):
        waiting = threading.Thread(target=cell)
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and not (tmp_path / "row.json").exists()
    waiting.join()
    assert json.loads((tmp_path / "row.json").read_text())["row"] == {"value": 3}


def test_a_failed_cell_says_the_logs_last_error(tmp_path):
    """The job's own error says that main_mlp.py exited; the log holds why (the line is picked from its end)."""
    log = tmp_path / "7_0_log.err"
    log.write_text("x" * 100_000 + "\nmain_mlp.py: error: unrecognized arguments: --no-such-flag\nTraceback (most "
                   "recent call last):\nRuntimeError: main_mlp.py --n 10 exited with status 2\n")
    (tmp_path / "cells").mkdir()
    outcome = {"status": "error", "error": "RuntimeError: main_mlp.py --n 10 exited with status 2"}
    (tmp_path / "out.json").write_text(json.dumps(outcome))
    (tmp_path / "cells" / "a.json").write_text(json.dumps(
        {"job_id": "7", "cluster": "local", "outcome": str(tmp_path / "out.json"), "stderr": str(log)}))
    assert launcher.collected(tmp_path, [].append) == [
        f"error: cell a (job 7) failed: RuntimeError: main_mlp.py --n 10 exited with status 2; log: {log} "
        "(last error: main_mlp.py: error: unrecognized arguments: --no-such-flag)"]


def test_a_requeued_cells_wall_s_sums_its_attempts(tmp_path, monkeypatch):
    """The first attempt is stopped by the requeue after its checkpoint; the second resumes it."""
    def train(argv, gpu):
        save_dir = Path(argv[argv.index("--save-dir") + 1])
        save_dir.mkdir(parents=True, exist_ok=True)
        time.sleep(0.2)
        if "--resume-training" not in argv:
            (save_dir / "checkpoint.pt").touch()
            raise SystemExit(-1)  # submitit's requeue
        return {"r2_mean": 1.0, "r2_std": 0.0, "mcc_mean": 1.0, "mcc_std": 0.0}
    monkeypatch.setattr(table1_grid, "train", train)
    args = grid_args(tmp_path)
    cell = (table1_grid.SETTINGS_BY_NAME[args.settings[0]], 0, args, tmp_path / "run")
    with pytest.raises(SystemExit):
        table1_grid.run_cell(*cell)
    assert float(table1_grid.run_cell(*cell)["wall_s"]) >= 0.4


def test_an_attempt_killed_outright_keeps_its_wall_time_to_the_last_save(tmp_path):
    """SIGKILL runs no `finally`: the attempt's time so far must already be in wall_s.json, and the resumed
    attempt adds to it."""
    def attempt():
        with jobs.summed_wall(tmp_path, resumed=False, save_s=0.05):
            time.sleep(60)
    child = killing.FORK.Process(target=attempt)
    child.start()
    time.sleep(0.6)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    killed = json.loads((tmp_path / "wall_s.json").read_text())["wall_s"]
    assert 0.2 <= killed <= 0.6  # 0.6 s less the start and at most one save interval
    with jobs.summed_wall(tmp_path, resumed=True) as wall:
        assert wall() >= killed


@pytest.mark.slow
def test_failed_cell_is_one_line_naming_its_log_and_the_other_rows_are_kept(tmp_path):
    rows = []
    failures = launcher.run_jobs({"ok": (launcher_cells.row, (3,)), "bad": (launcher_cells.broken, ())}, rows.append,
                                 launcher_args("--cluster", "local"), tmp_path)
    assert rows == [{"value": 3}]
    assert len(failures) == 1 and "\n" not in failures[0]
    line, log = failures[0].split("; log: ")
    assert line.startswith("error: cell bad (job ") and line.endswith(") failed: this cell cannot run")
    assert "this cell cannot run" in Path(log).read_text()


def test_a_finished_job_lands_in_the_3dident_table_and_a_failed_one_is_reported(tmp_path):
    """--table-only collects: the finished job's row is written before the failed job stops the tool (the two
    jobs' cells run here, writing their outcome files as in a job)."""
    cpu_table = import_tool("cpu_table")
    jobs = tmp_path / "work" / "submitit"
    (jobs / "cells").mkdir(parents=True)
    row = {"row": "untrained", "seed": 0, "r2": "0.1000", "mcc": "0.2000", "r2_latents": json.dumps([0.1] * 10),
           "steps": 0, "batch_size": 0, "train_s": "0", "flags": ""}
    for key, function, args in (("untrained_seed0", launcher_cells.given, (row,)),
                                ("l2_box_seed0", launcher_cells.broken, ())):
        cell = ToolCell(function, args, jobs / "outcomes" / f"{key}.json")
        with contextlib.suppress(RuntimeError):  # the broken cell's error, recorded
            cell()
        (jobs / "cells" / f"{key}.json").write_text(json.dumps(
            {"job_id": "7", "cluster": "local", "outcome": cell.outcome, "folder": str(jobs), "stderr": "7_0_log.err"}))
    with pytest.raises(SystemExit, match=r"^error: cell l2_box_seed0 \(job 7\) failed: this cell cannot run; "
                                         r"log: 7_0_log.err$"):
        cpu_table.main(["--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--table-only"])
    assert [r["row"] for r in cpu_table.read_runs(tmp_path / "out" / "runs.csv")] == ["untrained"]
    assert "| untrained encoder | — | 0.100 | 0.200 |" in (tmp_path / "out" / "table.md").read_text()
    assert not list((jobs / "cells").iterdir()) and not list((jobs / "outcomes").iterdir())


@contextlib.contextmanager
def submitits_handler(cell: ToolCell):
    """SIGUSR2 handled as submitit's job handler does: `checkpoint` the job's call, then exit with -1."""
    def requeue(signum, frame):
        cell.checkpoint()
        sys.exit(-1)
    previous = signal.signal(signal.SIGUSR2, requeue)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_only_submitits_requeue_leaves_no_outcome_and_an_exit_is_one_line(tmp_path):
    """submitit's requeue stops a job with SystemExit: no error outcome is left behind (the requeued job writes it,
    and its pickled call is not marked as requeuing); a cell's own exit (a `die`, argparse's status 2 of a bad
    flag) is an outcome, recorded as its last line, and goes on to submitit as an error."""
    requeued = ToolCell(launcher_cells.requeued, (), tmp_path / "requeued.json")
    with submitits_handler(requeued), pytest.raises(SystemExit):
        requeued()
    assert not (tmp_path / "requeued.json").exists()
    assert not pickle.loads(pickle.dumps(requeued)).requeuing
    for function, error in ((launcher_cells.broken, "RuntimeError: error: this cell cannot run"),
                            (launcher_cells.bad_flag, "RuntimeError: exited with status 2")):
        cell = ToolCell(function, (), tmp_path / f"{function.__name__}.json")
        with pytest.raises(RuntimeError):
            cell()
        assert json.loads(Path(cell.outcome).read_text()) == {"status": "error", "error": error}
    assert ToolCell(launcher_cells.row, (3,), tmp_path / "row.json")() == {"value": 3}
    assert json.loads((tmp_path / "row.json").read_text()) == {"status": "success", "row": {"value": 3}}


def fake_slurm(tmp_path: Path, monkeypatch, commands: tuple[str, ...] = ("sbatch", "srun")) -> None:
    """Fake SLURM `commands` alone on PATH: sbatch keeps the script it is given and answers job 42."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"sbatch": f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\necho Submitted batch job 42\n",
               "srun": "#!/bin/sh\n"}
    for command in commands:
        (bin_dir / command).write_text(scripts[command])
        (bin_dir / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_submitit_missing_or_no_sbatch_or_srun_is_a_one_line_error_before_any_cell(tmp_path, fake_main, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    with pytest.raises(SystemExit, match=r"^error: --launcher submitit needs the submitit package: pip install"):
        table1_grid.main(grid_args(tmp_path, "--launcher", "submitit", "--cluster", "local"))
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(SystemExit, match=r"^error: --cluster slurm needs SLURM's sbatch, which is not on PATH"):
        table1_grid.main(grid_args(tmp_path, "--launcher", "submitit"))
    fake_slurm(tmp_path, monkeypatch, ("sbatch",))  # sbatch, but no srun (submitit's traceback)
    with pytest.raises(SystemExit, match=r"^error: --cluster slurm needs SLURM's srun, which is not on PATH"):
        table1_grid.main(grid_args(tmp_path, "--launcher", "submitit"))
    assert fake_main == [] and not (tmp_path / "out" / "runs.csv").exists()


def test_cpu_table_checks_the_launcher_before_rendering(tmp_path, monkeypatch):
    cpu_table = import_tool("cpu_table")
    rendered = []
    monkeypatch.setattr(cpu_table, "render", lambda *args: rendered.append(args))
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(SystemExit, match=r"^error: --cluster slurm needs SLURM's sbatch, which is not on PATH"):
        cpu_table.main(["--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--launcher", "submitit"])
    assert rendered == []


def test_a_bad_extra_flag_is_one_line_before_any_cell_is_submitted(tmp_path, fake_main, monkeypatch):
    """The cells' main_mlp.py flags are parsed here: a bad --extra flag is not found by every job in turn."""
    def executor(args, folder, **shape):
        raise AssertionError("cells were submitted")
    monkeypatch.setattr(launcher, "make_executor", executor)
    with pytest.raises(SystemExit, match=r"^error: main_mlp.py: unrecognized arguments: --no-such-flag$"):
        table1_grid.main(grid_args(tmp_path, "--launcher", "submitit", "--cluster", "local",
                                   "--extra", "--no-such-flag"))
    assert fake_main == []


def test_slurm_gets_one_job_array_with_the_clusters_basics(tmp_path, fake_main, monkeypatch):
    """A fake sbatch (and srun) on PATH: the grid's four cells are one array of four, throttled to 2."""
    fake_slurm(tmp_path, monkeypatch)
    table1_grid.main(grid_args(tmp_path, "--launcher", "submitit", "--partition", "debugq", "--gpus-per-node", "1",
                               "--time-min", "30", "--array-parallelism", "2", "--sbatch", "account=lab", "--no-wait"))
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("--array=0-3%2", "--partition=debugq", "--gpus-per-node=1", "--time=30", "--account=lab",
                 "--signal=USR2@90", "--cpus-per-task=2"):
        assert f"#SBATCH {line}\n" in script
    records = sorted((tmp_path / "runs" / "cpu" / "submitit" / "cells").iterdir())
    assert [json.loads(r.read_text())["job_id"] for r in records] == ["42_0", "42_1", "42_2", "42_3"]
    assert fake_main == []  # nothing ran here


@pytest.mark.slow
def test_two_local_tasks_train_as_one_torchrun_group(tmp_path, in_process_loading):
    """submit_train.py: 2 tasks of one job (gloo, rendezvous from the job) with 4 pairs each train as one process
    with the global batch of 8 (tests/test_threedident_main.py checks torchrun itself the same way)."""
    import_tool("generate_latents").main([str(tmp_path / "data"), "--n", "64"])
    argv = ["--offline-dataset", str(tmp_path / "data"), "--mode", "unsupervised", *TINY, "--dummy-mixing", "--lr",
            "0.05", "--optimizer", "sgd", "--iterations", "10", "--n-log-steps", "5", "--n-eval-samples", "64"]
    main_3dident.main([*argv, "--output-dir", str(tmp_path / "one")])
    submit_train.main(["--cluster", "local", "--tasks-per-node", "2", "--cpus-per-task", "1", "--jobs-dir",
                       str(tmp_path / "jobs"), "main_3dident.py", *argv, "--output-dir", str(tmp_path / "two")])
    assert "torchrun: global batch 8 = 2 ranks × 4 pairs" in "".join(
        p.read_text() for p in (tmp_path / "jobs").glob("*_log.out"))
    (one, one_final), (two, two_final) = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(one) == 3 and np.isfinite(one[1:]).all()
    np.testing.assert_allclose(two[1:, :2], one[1:, :2], rtol=1e-5)  # losses (row 0: none yet)
    np.testing.assert_allclose(two[:, 2:], one[:, 2:], rtol=1e-5, atol=1e-4)  # R², MCC
    for key in one_final:  # per-latent R² of a 10-feature fit on 32 samples amplify rounding (as in test_threedident_main)
        np.testing.assert_allclose(two_final[key], one_final[key], rtol=1e-5, atol=1e-3 if key == "r2_latents" else 1e-4)
    assert json.loads((tmp_path / "two" / "args.json").read_text())["environment"]["world_size"] == 2


def test_submit_train_refuses_main_mlp_on_several_ranks_and_bad_flags_before_submitting(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: main_mlp.py trains in one process"):
        submit_train.main(["--cluster", "local", "--tasks-per-node", "2", "main_mlp.py", "--n", "2"])
    with pytest.raises(SystemExit):
        submit_train.main(["--cluster", "local", "--jobs-dir", str(tmp_path), "main_mlp.py", "--no-such-flag"])
    assert not list(tmp_path.iterdir())
