"""Run a script as `python <script> <args>` would, SIGKILL it at a given moment, resume it: for the resume tests.

The script runs in a process forked from the test's, as its `__main__` (runpy), with the repository as working
directory: the same code path as a fresh interpreter, without its seconds of importing torch again.
"""
import csv
import multiprocessing
import os
import runpy
import signal
import sys
import time
from multiprocessing import resource_tracker
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FORK = multiprocessing.get_context("fork")


def data_rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def run_as_main(argv: list[str], log: str) -> None:
    """In the forked child: `python <argv>`, with its output and that of its own children to the file `log`.
    Like a fresh interpreter it starts its own multiprocessing resource tracker (not the test process's): once
    SIGKILLed, its data workers' semaphores are cleaned up by that tracker, whose notice goes to `log`."""
    os.chdir(REPO)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(fd, "w", buffering=1)
    tracker = resource_tracker._resource_tracker  # noqa: SLF001 (no public way to leave the parent's tracker)
    if tracker._fd is not None:
        os.close(tracker._fd)
        tracker._fd = tracker._pid = None
    sys.argv = argv
    runpy.run_path(str(REPO / argv[0]), run_name="__main__")


def kill_after_rows(argv: list[str], metrics: Path, rows: int, timeout: float = 240) -> None:
    """Start `python <argv>`, SIGKILL it once `metrics` holds `rows` data rows; it must not have finished."""
    log = metrics.parent.with_name(metrics.parent.name + ".log")
    metrics.parent.parent.mkdir(parents=True, exist_ok=True)
    proc = FORK.Process(target=run_as_main, args=([*map(str, argv)], str(log)))
    proc.start()
    deadline = time.monotonic() + timeout
    while proc.is_alive() and data_rows(metrics) < rows and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.join()
    assert proc.exitcode == -signal.SIGKILL, f"the run ended before it was killed: {log.read_text()[-2000:]}"


def kill_twice(argv: list[str], resume: str, metrics: Path, rows: tuple[int, int]) -> None:
    """Kill `python <argv>` once `metrics` holds rows[0] rows, then its resumed run (`argv + [resume]`) at
    rows[1] rows: the caller resumes a third time, to the end (in its own process: the scripts give the same
    numbers in a test's process as in their own, both on one thread)."""
    kill_after_rows(argv, metrics, rows[0])
    kill_after_rows([*argv, resume], metrics, rows[1])


def rows_without_time(path: Path) -> list[dict]:
    """metrics.csv without its wall-clock column."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]
