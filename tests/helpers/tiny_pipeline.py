"""One run of the whole DAG on the tiny scenario (.test/config.yaml), shared by every test file that reads it.

test_workflow.py checks that run's report, tables and hygiene; test_faults.py compares its interrupted
and resumed run with it; test_slurm.py compares the same DAG run through SLURM with it. The run is
made once per test session: the first test process to ask makes it under a file lock while the
others wait, so under pytest-xdist (two processes) it is not made twice. A failed run is remembered,
so every later caller fails at once with the same message instead of running it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".test" / "config.yaml"


def run_snakemake(workdir: Path, *args, configfiles=(CONFIG,), timeout=1500) -> subprocess.CompletedProcess:
    """Snakemake on the project's Snakefile in ``workdir`` with the tiny config, two cores, the venv's
    interpreter first on PATH and the repository importable (as the README's commands run jobs)."""
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", *map(str, configfiles), "--cores", "2", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        env={**os.environ, "PATH": env_path, "PYTHONPATH": str(ROOT)},
    )


def failure_text(workdir: Path, result: subprocess.CompletedProcess) -> str:
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted((workdir / "logs").rglob("*.log")))
    return f"snakemake failed:\n{result.stderr[-6000:]}\n{logs[-12000:]}"


def session_root(tmp_path_factory) -> Path:
    """The folder every test process of this session shares (pytest-xdist gives each its own base)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def tiny_pipeline(tmp_path_factory) -> Path:
    """The working folder of the session's one run of the whole tiny DAG (made on first use).

    Raises RuntimeError with Snakemake's output and the job logs if that run failed."""
    from filelock import FileLock

    root = session_root(tmp_path_factory)
    workdir, done, failed = root / "tiny_pipeline", root / "tiny_pipeline.done", root / "tiny_pipeline.failed"
    with FileLock(str(root / "tiny_pipeline.lock")):
        if failed.exists():
            raise RuntimeError(failed.read_text())
        if not done.exists():
            workdir.mkdir(exist_ok=True)
            result = run_snakemake(workdir)
            if result.returncode != 0:
                failed.write_text(failure_text(workdir, result))
                raise RuntimeError(failed.read_text())
            done.touch()
    return workdir
