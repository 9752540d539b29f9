"""io_utils is torch-free, and so are the tools that import it for atomic writes and one-line errors: the
downloader and the job outcomes (tools/jobs.py) start without loading torch (seconds)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_downloader_and_the_job_outcomes_import_no_torch():
    check = "import sys, io_utils, tools.download, tools.jobs; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], cwd=REPO).returncode == 0
