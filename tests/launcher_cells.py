"""Cells for tests/test_tools_launcher.py's jobs: importing this module in a job costs no torch."""


def row(value: int) -> dict:
    return {"value": value}


def broken() -> dict:
    raise SystemExit("error: this cell cannot run")  # as training_utils.die stops a script


def given(row: dict) -> dict:
    return row


def requeued() -> dict:
    raise SystemExit(-1)  # as submitit's requeue (SIGUSR2) stops a job
