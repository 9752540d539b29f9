"""Submit one training run as a submitit job: main_3dident.py on --nodes N × --tasks-per-node G (one rank per GPU,
torchrun's rendezvous variables set from the job, tools/jobs.py `TrainJob`), or main_mlp.py in one task. The
global batch keeps its meaning: --batch-size is split evenly over the N·G ranks (distributed_utils.py), so the job
trains as one process on the whole batch does. A preempted or timed-out job is requeued and resumes its run folder.

    python tools/submit_train.py --cluster slurm --partition gpu --nodes 2 --tasks-per-node 4 --gpus-per-node 4 \\
        main_3dident.py --offline-dataset data/3dident/train --mode unsupervised --output-dir runs/3dident_2x4

The same job without submitit, in an sbatch script (docs/scale-out.md): srun --ntasks-per-node 1 torchrun
--nnodes $SLURM_NNODES --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint $MASTER:29500 main_3dident.py ...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import launcher  # noqa: E402
from tools.jobs import RESUMABLE, TrainJob, rank_outcome  # noqa: E402
from training_utils import die  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("submit_train.py", description="One training run as a (multi-node) job.",
                                     allow_abbrev=False)  # the script's flags are its own, not prefixes of ours
    parser.add_argument("--nodes", type=int, default=1, help="Nodes of the job (main_3dident only above 1).")
    parser.add_argument("--tasks-per-node", type=int, default=1,
                        help="Ranks per node: one per GPU (= --gpus-per-node), or CPU ranks with gloo.")
    parser.add_argument("--jobs-dir", default="runs/submitit", help="submitit's files, the job's logs and outcomes.")
    parser.add_argument("script", choices=tuple(RESUMABLE), help="The training script.")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="The script's flags (--output-dir / --save-dir: the "
                        "run folder a requeued job resumes).")
    launcher.add_launcher_args(parser)
    return parser


def main(argv: list[str] | None = None):
    """Submit the job (and wait for it unless --no-wait); returns the submitit job."""
    args = get_args_parser().parse_args(argv)
    ranks = args.nodes * args.tasks_per_node
    if args.script == "main_mlp.py" and ranks > 1:
        die(f"main_mlp.py trains in one process: use --nodes 1 --tasks-per-node 1, not {ranks} ranks")
    job = TrainJob(args.script, args.argv)
    job.resume_argv()  # the script's own parser: bad flags stop here, before anything is submitted
    executor = launcher.make_executor(args, Path(args.jobs_dir), nodes=args.nodes, tasks_per_node=args.tasks_per_node)
    with launcher.repo_on_pythonpath():
        submitted = executor.submit(job)
    print(f"submitted {args.script} on {args.nodes} × {args.tasks_per_node} ranks: job {submitted.job_id} "
          f"(log {submitted.paths.stdout})", flush=True)
    if not args.no_wait:
        submitted.wait()
        for rank in range(submitted.num_tasks):
            outcome = rank_outcome(submitted.paths.folder, submitted.job_id, rank)
            record = {"job_id": submitted.job_id, "outcome": outcome, "stderr": submitted.task(rank).paths.stderr}
            why = launcher.failure(launcher.job_result(record))
            if why:
                die(launcher.failure_line(f"{args.script} rank {rank}", record, why).removeprefix("error: "))
    return submitted


if __name__ == "__main__":
    main()
