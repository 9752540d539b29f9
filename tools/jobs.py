"""What a submitit job runs (tools/launcher.py submits them): a grid's cell, or one task of a training run.
Light to import (no torch): a job unpickles these before it imports what it runs. Each writes its outcome as a
small JSON file (`recorded`) that the launcher reads: submitit's own result pickle is never loaded (reading a pickle
can run code; tests/test_training_utils.py).

Both are requeued after preemption or the time limit: submitit calls `checkpoint` on SIGUSR2, and the job runs
again from the run folder's checkpoint.pt (the grid tools pass their scripts' resume flag when a checkpoint
exists; `TrainJob` adds it itself), ending with the scores of a run left alone.
"""
from __future__ import annotations

import importlib
import json
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from io_utils import atomic_write  # noqa: E402  (torch-free)

RESUMABLE = {"main_3dident.py": ("output_dir", "--resume"), "main_mlp.py": ("save_dir", "--resume-training")}


def one_line_error(error: SystemExit) -> RuntimeError:
    """A script's `die` (SystemExit with a message) as an exception the job records as its error."""
    return RuntimeError(str(error.code).strip().splitlines()[-1])


def write_outcome(path: str | Path, outcome: dict) -> None:
    """`outcome` as JSON in `path`, atomically (a reader never sees half of it)."""
    atomic_write(path, lambda f: f.write(json.dumps(outcome).encode()))


def recorded(path: str | Path, call: Callable[[], dict | None]) -> dict | None:
    """`call()`, its outcome written to `path` for the launcher (tools/launcher.py `job_result`):
    {"status": "success", "row": row}, or {"status": "error", "error": the exception's last line} before the
    exception goes on to submitit, which logs its traceback. Only an Exception is an error: submitit's requeue
    (SIGUSR2) stops the job with SystemExit and leaves no outcome; the requeued job writes it when it ends."""
    try:
        row = call()
    except Exception as e:
        write_outcome(path, {"status": "error",
                             "error": "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]})
        raise
    write_outcome(path, {"status": "success", "row": row})
    return row


def rank_outcome(folder: str | Path, job_id: str, rank: int) -> Path:
    """Where task `rank` of training job `job_id` writes its outcome: beside submitit's files of the task."""
    return Path(folder) / f"{job_id}_{rank}_outcome.json"


class Requeueable:
    """submitit's hook on SIGUSR2 (preemption, time limit): `checkpoint` returns the same call, to run again in
    the requeued job (which resumes from the run folder)."""

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission
        return DelayedSubmission(self)


class ToolCell(Requeueable):
    """One cell as a job: `function(*args)` of the tool module `module` (file `tool`), imported in the job; its
    row (or error) is written to `outcome` (`recorded`). Requeued after preemption or the time limit: the cell runs
    again and its training resumes its checkpoint."""

    def __init__(self, function: Callable, args: tuple, outcome: str | Path):
        module = sys.modules[function.__module__]
        self.tool, self.module, self.function, self.args = module.__file__, module.__name__, function.__name__, args
        self.outcome = str(outcome)

    def __call__(self) -> dict:
        return recorded(self.outcome, self.run)

    def run(self) -> dict:
        folder = str(Path(self.tool).parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # tools/3dident's scripts import their neighbours
        name = Path(self.tool).stem if self.module == "__main__" else self.module
        try:
            return getattr(importlib.import_module(name), self.function)(*self.args)
        except SystemExit as e:
            if isinstance(e.code, str):
                raise one_line_error(e) from None
            raise  # submitit's requeue exits with a number


class TrainJob(Requeueable):
    """One task of a training job: sets torchrun's rendezvous variables from the job (MASTER_ADDR/PORT, RANK,
    WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE: rank = global task id, one task per GPU) and runs `script argv`
    in-process; each task writes its outcome to `rank_outcome`. Requeued after preemption or the time limit with the
    script's resume flag (RESUMABLE)."""

    def __init__(self, script: str, argv: list[str]):
        self.script, self.argv = script, list(argv)

    def __call__(self) -> None:
        from submitit import JobEnvironment
        env = JobEnvironment()
        recorded(rank_outcome(env.paths.folder, env.job_id, env.global_rank), self.run)

    def run(self) -> None:
        import submitit
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        sys.argv = [self.script, *self.resume_argv()]
        try:
            runpy.run_path(str(REPO / self.script), run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, str):
                raise one_line_error(e) from None
            if e.code:
                raise

    def resume_argv(self) -> list[str]:
        """argv, with the resume flag once the run folder holds a checkpoint."""
        dest, flag = RESUMABLE[self.script]
        folder = getattr(importlib.import_module(Path(self.script).stem).get_args_parser().parse_args(self.argv), dest)
        resume = folder and (Path(folder) / "checkpoint.pt").is_file() and flag not in self.argv
        return [*self.argv, flag] if resume else self.argv
