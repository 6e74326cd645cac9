"""Running the project's CLIs as child processes, as the workflow does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def one_thread_env() -> dict:
    """The environment of a child process: the project on PYTHONPATH, this interpreter first on PATH.

    One thread everywhere: an interrupted and an uninterrupted run compute in the same order,
    so their results can be compared bit for bit.
    """
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
