"""Run a script in a subprocess, SIGKILL it at a given moment, resume it: for the resume tests."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def data_rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def kill_after_rows(argv: list[str], metrics: Path, rows: int, timeout: float = 240) -> None:
    """Start `python <argv>`, SIGKILL it once `metrics` holds `rows` data rows; it must not have finished."""
    proc = subprocess.Popen([sys.executable, *map(str, argv)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and data_rows(metrics) < rows and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, f"the run ended before it was killed: {proc.stderr.read()[-2000:]}"


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
