"""The grids' cells (and single trainings) as submitit jobs, on a SLURM cluster or as local processes.

`--launcher submitit` on tools/table1_grid.py, tools/kitti_table.py and tools/3dident/cpu_table.py submits every
unfinished cell as one job of a job array (`run_jobs`); `--cluster local` runs the same jobs as processes of this
machine (submitit's LocalExecutor). A submitted cell is recorded in `<folder>/cells/<cell>.json`; each call of a
tool first collects the cells whose jobs have finished (their rows go to runs.csv as with the local launcher) and
submits only the cells that are neither finished nor still queued or running, so a tool can exit after submitting
(`--no-wait`) and a later call (or `--table-only`) picks the results up: each job writes its outcome (row or
error) to `<folder>/outcomes/<cell>.json` (tools/jobs.py `recorded`: JSON, which runs no code when read). A failed
cell is one line naming the job's log and the log's last error line; the other cells' rows are kept. What would
stop every job (no sbatch or srun, a bad cell flag) stops the tool before it submits anything.

Preemption and time limits: SLURM (or the local executor) sends SIGUSR2 before it stops a job; submitit then calls
`checkpoint` of the job's callable (tools/jobs.py) and requeues it, and the requeued job trains on from
the run folder's checkpoint.pt (the tools and tools/jobs.py resume a run whose checkpoint exists, training_loop.py),
so it ends with the scores of a run left alone.

    python tools/table1_grid.py --launcher submitit --cluster slurm --partition gpu --gpus-per-node 1 --scale paper
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.jobs import ToolCell  # noqa: E402
from io_utils import atomic_write, die  # noqa: E402

POLL_S = {"local": 1.0, "slurm": 60.0}  # seconds between looks at the jobs while waiting


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """The flags of the launcher: where jobs run and what each asks of the cluster."""
    group = parser.add_argument_group("launcher", "run the cells as submitit jobs (docs/scale-out.md)")
    add = group.add_argument
    add("--launcher", choices=("local", "submitit"), default="local",
        help="local: run the cells from this process, as without a launcher; submitit: one job per cell, on --cluster.")
    add("--cluster", choices=("slurm", "local"), default="slurm",
        help="slurm: sbatch a job array (needs sbatch); local: the same jobs as processes of this machine.")
    add("--partition", default=None, help="SLURM partition of the jobs (the cluster's default if unset).")
    add("--gpus-per-node", type=int, default=0, help="GPUs of each job (1 for a GPU cell; 0: CPU cells).")
    add("--cpus-per-task", type=int, default=2, help="CPU cores of each job's task (2; data workers need more).")
    add("--time-min", type=int, default=1440,
        help="Time limit of a job in minutes (1440); a job that reaches it is requeued and resumes its checkpoint.")
    add("--max-timeouts", type=int, default=10,
        help="Requeues after the time limit before a job counts as failed (10; preemptions do not count).")
    add("--array-parallelism", type=int, default=8,
        help="Jobs running at once (8): SLURM's array throttle %%N; with --cluster local, the cells that run at "
             "once (the other jobs wait for a slot).")
    add("--sbatch", action="append", default=[], metavar="KEY=VALUE",
        help="Extra sbatch option, repeatable: --sbatch account=mylab --sbatch mem=32G (slurm_additional_parameters).")
    add("--no-wait", action="store_true",
        help="Exit after submitting; a later call (or --table-only) collects the finished cells.")


def sbatch_options(pairs: list[str]) -> dict[str, str]:
    """--sbatch KEY=VALUE pairs as submitit's slurm_additional_parameters."""
    bad = [p for p in pairs if "=" not in p]
    if bad:
        die(f"--sbatch takes KEY=VALUE, got {bad[0]!r}")
    return dict(p.split("=", 1) for p in pairs)


def executor_parameters(args: argparse.Namespace, nodes: int = 1, tasks_per_node: int = 1) -> dict:
    """submitit.AutoExecutor parameters of the launcher flags (the slurm_ ones are ignored by the local executor)."""
    return {"timeout_min": args.time_min, "gpus_per_node": args.gpus_per_node, "cpus_per_task": args.cpus_per_task,
            "nodes": nodes, "tasks_per_node": tasks_per_node, "slurm_partition": args.partition,
            "slurm_array_parallelism": args.array_parallelism,
            "slurm_additional_parameters": sbatch_options(args.sbatch)}


def check_launcher(args: argparse.Namespace) -> None:
    """A one-line error, before any work, where the jobs cannot be submitted: submitit is not installed, or SLURM
    is asked for where its sbatch or srun is not on PATH."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        die("--launcher submitit needs the submitit package: pip install 'submitit>=1.5,<2'")
    for command in ("sbatch", "srun") if args.cluster == "slurm" else ():
        if shutil.which(command) is None:
            die(f"--cluster slurm needs SLURM's {command}, which is not on PATH here "
                "(submit from the cluster's login node, or use --cluster local)")


def checked_flags(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed by a script's `parser`, a bad flag a one-line error instead of argparse's usage: the tools
    check their cells' flags before any cell runs or is submitted."""
    def error(message: str) -> None:
        die(f"{parser.prog}: {message}")
    parser.error = error
    return parser.parse_args(argv)


def make_executor(args: argparse.Namespace, folder: Path, **shape):
    """A submitit executor for --cluster writing its files and logs to `folder` (`check_launcher` first)."""
    check_launcher(args)
    import submitit
    executor = submitit.AutoExecutor(folder=folder, cluster=args.cluster, slurm_max_num_timeout=args.max_timeouts,
                                     local_max_num_timeout=args.max_timeouts)
    executor.update_parameters(**executor_parameters(args, **shape))
    return executor


@contextlib.contextmanager
def repo_on_pythonpath() -> Iterator[None]:
    """PYTHONPATH starting with the repository while jobs are submitted: the jobs inherit it (sbatch exports the
    environment) and unpickle their callables from tools.jobs wherever they start."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), old]))
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def job_result(record: dict) -> dict | None:
    """The outcome the job wrote (tools/jobs.py `recorded`): {"status": "success", "row": row} or
    {"status": "error", "error": one line}; None while it has none."""
    try:
        return json.loads(Path(record["outcome"]).read_text())
    except FileNotFoundError:
        return None


def job_alive(record: dict) -> bool:
    """Whether the job is still queued or running: the local controller process, or SLURM's accounting."""
    if record["cluster"] == "local":
        try:
            state = Path(f"/proc/{record['job_id']}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"
    import submitit
    return not submitit.SlurmJob(record["folder"], record["job_id"]).done(force_check=True)


def failure(outcome: dict | None) -> str | None:
    """Why a finished job failed, in one line (None if it succeeded), from its `job_result`: the last line of its
    error, or that it ended without a result."""
    if outcome is None:
        return "ended without a result (killed, or out of memory?)"
    return None if outcome["status"] == "success" else "failed: " + outcome["error"].split("error: ", 1)[-1]


def last_error_line(log: str | Path, tail_bytes: int = 1 << 16) -> str | None:
    """The last line of a job's log (its last `tail_bytes`) that reports an error as the scripts' `die`, argparse
    and SLURM do ("error: …"); None without one or without the log."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - tail_bytes))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    return next((line.strip() for line in reversed(lines) if "error: " in line), None)


def failure_line(key: str, record: dict, why: str) -> str:
    """One line: the failed job, why (`failure`), its log, and the log's last error line where it says more
    (the corrupt checkpoint a script's process stopped at, argparse's message of a bad flag)."""
    cause = last_error_line(record["stderr"])
    more = f" (last error: {cause})" if cause and why.removeprefix("failed: ") not in cause else ""
    return f"error: {key} (job {record['job_id']}) {why}; log: {record['stderr']}{more}"


def collect(folder: Path, on_row: Callable[[dict], None],
            check_alive: bool = True) -> tuple[set[str], set[str], dict[str, str]]:
    """Hand the rows of finished jobs to `on_row` and forget their records; (cells still queued or running,
    cells finished, cell → one-line error of each failed one). A failed job counts as running until its process
    has ended: the job writes its error before submitit logs the traceback to the log that the error line names.
    Without `check_alive` a job without a result counts as running, and a failed one as failed."""
    running, finished, failures = set(), set(), {}
    for path in sorted((folder / "cells").glob("*.json")):
        key, record = path.stem, json.loads(path.read_text())
        outcome = job_result(record)
        pending = outcome is None or outcome["status"] != "success"
        if pending and (job_alive(record) if check_alive else outcome is None):
            running.add(key)
            continue
        why = failure(outcome)
        if why is None:
            on_row(outcome["row"])
            finished.add(key)
        else:
            failures[key] = failure_line(f"cell {key}", record, why)
        path.unlink()
        Path(record["outcome"]).unlink(missing_ok=True)
    return running, finished, failures


def collected(folder: Path, on_row: Callable[[dict], None]) -> list[str]:
    """Hand the rows of the jobs that finished since the last call to `on_row` (every call of a tool starts
    here, so `--table-only` picks them up too); one line per failed cell."""
    return list(collect(folder, on_row, check_alive=False)[2].values())


def submit(executor, cells: dict[str, ToolCell], folder: Path) -> None:
    """Submit `cells` as one job array and record each cell's job (its outcome file, and submitit's folder that
    SLURM's `job_alive` asks about)."""
    for cell in cells.values():
        Path(cell.outcome).unlink(missing_ok=True)  # left by a job whose record was lost: not this job's outcome
    with repo_on_pythonpath(), executor.batch():
        jobs = {key: executor.submit(cell) for key, cell in cells.items()}
    for key, job in jobs.items():
        record = {"job_id": job.job_id, "cluster": executor.cluster, "outcome": cells[key].outcome,
                  "folder": str(job.paths.folder), "stderr": str(job.paths.stderr)}
        atomic_write(folder / "cells" / f"{key}.json", lambda f: f.write(json.dumps(record).encode()))
        print(f"submitted {key}: job {job.job_id} (log {job.paths.stderr})", flush=True)


def local_slots(args: argparse.Namespace, folder: Path) -> tuple[str, int] | None:
    """The cells' `local_slot`s with --cluster local (--array-parallelism of them), None on SLURM (the array's
    throttle)."""
    return (str(folder / "slots"), args.array_parallelism) if args.cluster == "local" else None


def run_jobs(cells: dict[str, tuple[Callable, tuple]], on_row: Callable[[dict], None], args: argparse.Namespace,
             folder: Path) -> list[str]:
    """Collect finished jobs, submit the cells (key → (function, args)) that have no job yet as one job array
    (at most --array-parallelism of them running at once), and, unless --no-wait, wait for all, handing each row
    to `on_row` as its job finishes. Returns one line per failed cell."""
    running, finished, failures = collect(folder, on_row)
    queued = {key: ToolCell(*cell, folder / "outcomes" / f"{key}.json", local_slots(args, folder))
              for key, cell in cells.items() if key not in running | finished | set(failures)}
    if queued:
        submit(make_executor(args, folder), queued, folder)
    while not args.no_wait:
        running, _, failed = collect(folder, on_row)
        failures.update(failed)
        if not running:
            break
        time.sleep(POLL_S[args.cluster])
    return list(failures.values())


def report(failures: list[str]) -> None:
    """Stop with one line per failed cell (exit status 1), after the finished rows were written."""
    if failures:
        raise SystemExit("\n".join(failures))
