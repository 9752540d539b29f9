"""What a submitit job runs (tools/launcher.py submits them): a grid's cell, or one task of a training run.
Light to import (no torch): a job unpickles these before it imports what it runs. Each writes its outcome as a
small JSON file (`recorded`) that the launcher reads: submitit's own result pickle is never loaded (reading a pickle
can run code; tests/test_training_utils.py).

Both are requeued after preemption or the time limit: submitit calls `checkpoint` on SIGUSR2, and the job runs
again from the run folder's checkpoint.pt (the grid tools pass their scripts' resume flag when a checkpoint
exists; `TrainJob` adds it itself), ending with the scores of a run left alone.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import runpy
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from io_utils import atomic_write  # noqa: E402  (torch-free)

WALL_SAVE_S = 60.0  # seconds between `summed_wall`'s saves of a running attempt (what a SIGKILL can lose)
SLOT_POLL_S = 1.0  # seconds between a waiting local job's looks for a free `local_slot`
RESUMABLE = {"main_3dident.py": ("output_dir", "--resume"), "main_mlp.py": ("save_dir", "--resume-training")}


def exit_error(error: SystemExit) -> RuntimeError:
    """A script's exit as an exception the job records as its error: the last line of a `die`'s message, or the
    exit status (argparse's 2, whose message went to the job's log)."""
    if isinstance(error.code, str):
        return RuntimeError(error.code.strip().splitlines()[-1])
    return RuntimeError(f"exited with status {error.code}")


def write_outcome(path: str | Path, outcome: dict) -> None:
    """`outcome` as JSON in `path`, atomically (a reader never sees half of it)."""
    atomic_write(path, lambda f: f.write(json.dumps(outcome).encode()))


def recorded(path: str | Path, call: Callable[[], dict | None]) -> dict | None:
    """`call()`, its outcome written to `path` for the launcher (tools/launcher.py `job_result`):
    {"status": "success", "row": row}, or {"status": "error", "error": the exception's last line} before the
    exception goes on to submitit, which logs its traceback. Only an Exception is an error (the jobs turn a
    script's exit into one, `Requeueable.raise_exit`): submitit's requeue (SIGUSR2) stops the job with SystemExit
    and leaves no outcome; the requeued job writes it when it ends."""
    try:
        row = call()
    except Exception as e:
        write_outcome(path, {"status": "error",
                             "error": "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]})
        raise
    write_outcome(path, {"status": "success", "row": row})
    return row


@contextlib.contextmanager
def summed_wall(run_dir: str | Path, resumed: bool, save_s: float = WALL_SAVE_S) -> Iterator[Callable[[], float]]:
    """Wall seconds of a run summed over its attempts (a requeued or interrupted cell resumes its checkpoint):
    each attempt adds its time to `<run_dir>/wall_s.json` every `save_s` seconds and when it ends, so an attempt
    killed outright (SIGKILL, the end of a session) loses at most `save_s`; a run that starts afresh (`resumed`
    false) starts from 0. Yields a function giving the total so far."""
    path = Path(run_dir) / "wall_s.json"
    earlier = json.loads(path.read_text())["wall_s"] if resumed and path.is_file() else 0.0
    start = time.perf_counter()

    def total() -> float:
        return earlier + time.perf_counter() - start

    ended = threading.Event()

    def save_while_running() -> None:
        while not ended.wait(save_s):
            write_outcome(path, {"wall_s": total()})
    saver = threading.Thread(target=save_while_running, daemon=True)
    saver.start()
    try:
        yield total
    finally:
        ended.set()
        saver.join()
        write_outcome(path, {"wall_s": total()})


@contextlib.contextmanager
def local_slot(folder: str | Path, slots: int) -> Iterator[None]:
    """Hold one of `slots` lock files in `folder` while the body runs, waiting for one to be free: at most `slots`
    local jobs run their cells at once (--array-parallelism of --cluster local, which submitit's local executor
    does not limit). The lock goes with the process, however it ends."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    while True:
        for k in range(slots):
            with open(Path(folder) / f"{k}.lock", "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                yield
                return
        time.sleep(SLOT_POLL_S)


def rank_outcome(folder: str | Path, job_id: str, rank: int) -> Path:
    """Where task `rank` of training job `job_id` writes its outcome: beside submitit's files of the task."""
    return Path(folder) / f"{job_id}_{rank}_outcome.json"


class Requeueable:
    """submitit's hook on SIGUSR2 (preemption, time limit): `checkpoint` returns the same call, to run again in
    the requeued job (which resumes from the run folder), and marks this job as requeuing: the SystemExit that
    submitit raises next is its requeue, any other exit of the code run is an outcome (`raise_exit`)."""

    requeuing = False

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission
        self.requeuing = True
        return DelayedSubmission(self)

    def __getstate__(self) -> dict:
        """The pickled call (the requeued job's): without this job's mark."""
        return {key: value for key, value in vars(self).items() if key != "requeuing"}

    def raise_exit(self, error: SystemExit) -> NoReturn:
        """Re-raise submitit's requeue; raise any other exit as the job's error (`exit_error`), never a requeue."""
        if self.requeuing:
            raise error
        raise exit_error(error) from None


class ToolCell(Requeueable):
    """One cell as a job: `function(*args)` of the tool module `module` (file `tool`), imported in the job; its
    row (or error) is written to `outcome` (`recorded`). Requeued after preemption or the time limit: the cell runs
    again and its training resumes its checkpoint. `slots` (folder, count): run only in a free `local_slot`."""

    def __init__(self, function: Callable, args: tuple, outcome: str | Path, slots: tuple[str, int] | None = None):
        module = sys.modules[function.__module__]
        self.tool, self.module, self.function, self.args = module.__file__, module.__name__, function.__name__, args
        self.outcome, self.slots = str(outcome), slots

    def __call__(self) -> dict:
        with local_slot(*self.slots) if self.slots else contextlib.nullcontext():
            return recorded(self.outcome, self.run)

    def run(self) -> dict:
        folder = str(Path(self.tool).parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # tools/3dident's scripts import their neighbours
        name = Path(self.tool).stem if self.module == "__main__" else self.module
        try:
            return getattr(importlib.import_module(name), self.function)(*self.args)
        except SystemExit as e:
            self.raise_exit(e)


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
            if e.code:
                self.raise_exit(e)

    def resume_argv(self) -> list[str]:
        """argv, with the resume flag once the run folder holds a checkpoint."""
        dest, flag = RESUMABLE[self.script]
        folder = getattr(importlib.import_module(Path(self.script).stem).get_args_parser().parse_args(self.argv), dest)
        resume = folder and (Path(folder) / "checkpoint.pt").is_file() and flag not in self.argv
        return [*self.argv, flag] if resume else self.argv
