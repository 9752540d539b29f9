"""Cells for tests/test_tools_launcher.py's jobs: importing this module in a job costs no torch."""
import argparse
import os
import signal


def row(value: int) -> dict:
    return {"value": value}


def broken() -> dict:
    raise SystemExit("error: this cell cannot run")  # as training_utils.die stops a script


def bad_flag() -> dict:
    return vars(argparse.ArgumentParser("cell.py").parse_args(["--no-such-flag"]))  # argparse exits with status 2


def given(row: dict) -> dict:
    return row


def requeued() -> dict:
    os.kill(os.getpid(), signal.SIGUSR2)  # submitit's handler checkpoints the job and exits with -1
    raise AssertionError("SIGUSR2 did not stop the job")
