"""The README's commands for real datasets, run as written, as a user meets them.

The commands are read out of README.md ("Real datasets"), so the test fails when the README
and the workflow drift apart. They run in a copy of the working tree (a fresh clone, with the
existing .venv linked in) on a small LAV-DF-format folder outside it, made by
`python -m wmmt.synthetic`, with the tiny settings of .test/config.yaml. Only the
`--configfile` argument is replaced, by that tiny config.

The user's shell is reproduced as the issue met it: the project's .venv is not on PATH and
the first `python` there is not the project's interpreter (a stand-in that fails, and
records that it was called), so a job that ran `python -m ...` with whatever is on PATH fails.

* the Snakemake command (`.venv/bin/snakemake --profile workflow/profiles/local ...`) runs
  its jobs with the project's interpreter, up to the first feature shard (random checkpoints,
  manifest, one extraction shard: the first jobs; the wrapper's run below does the rest);
* the wrapper command (`bash workflow/run.sh pipeline ...`) runs the whole DAG to the
  report; while it runs, a second start is refused by Snakemake's lock (never unlocked under
  a live run); after its Snakemake process is killed with SIGKILL (its running jobs are left
  behind, as after kill -9 or the out-of-memory killer), the same command again waits for
  those jobs, removes the stale lock and finishes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.workflow import VENV, block_commands, fresh_copy, readme_section, tiny_lavdf_config

TIMEOUT = 420  # seconds for one command; the whole DAG takes about a minute here

pytestmark = pytest.mark.skipif(not (VENV / "bin" / "snakemake").exists(),
                                reason=f"the project's environment is not installed in {VENV}")


def with_config(command: str, config: Path) -> list[str]:
    """The README's command with its --configfile replaced by ``config``, else as written."""
    argv = shlex.split(command)
    assert "--configfile" in argv, command
    argv[argv.index("--configfile") + 1] = str(config)
    return argv


def test_readme_commands_are_found():
    section = readme_section("Real datasets")
    assert block_commands(section) == ["bash workflow/run.sh pipeline --configfile config/lavdf.yaml"]
    assert snakemake_command(section) == (".venv/bin/snakemake --profile workflow/profiles/local "
                                          "--configfile config/lavdf.yaml")


def snakemake_command(section: str) -> str:
    found = re.findall(r"`(\.venv/bin/snakemake [^`]*--configfile[^`]*)`", section)
    assert len(found) == 1, f"expected one `.venv/bin/snakemake ... --configfile ...` in the section, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A LAV-DF-format folder (metadata.json + mp4 tree) outside the repository, and a tiny config."""
    return tiny_lavdf_config(tmp_path_factory.mktemp("lavdf"))


@pytest.fixture(scope="module")
def user_env(tmp_path_factory):
    """A user's shell: no project .venv on PATH, and a first `python` that is not the project's."""
    stub_dir = tmp_path_factory.mktemp("user_bin")
    calls = stub_dir / "calls.log"
    stub = stub_dir / "python"
    stub.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{calls}'\n"
                    "echo \"ModuleNotFoundError: No module named 'pandas' (not the project's python)\" >&2\n"
                    "exit 1\n")
    stub.chmod(0o755)
    venv_bin = (VENV / "bin").resolve()
    path = [str(stub_dir)] + [p for p in os.environ.get("PATH", "").split(os.pathsep)
                              if p and Path(p).resolve() != venv_bin]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SNAKEMAKE_PROFILE")}
    env["PATH"] = os.pathsep.join(path)
    assert shutil.which("python", path=env["PATH"]) == str(stub)  # the failure the issue met is set up
    return env, calls


def output_of(proc: subprocess.CompletedProcess | subprocess.Popen, workdir: Path, text: str = "") -> str:
    logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((workdir / "logs").rglob("*.log")))
    return f"exit {proc.returncode}\n{text[-6000:]}\n{logs[-6000:]}"


@pytest.mark.e2e
def test_readme_snakemake_command_runs_jobs_with_the_projects_python(dataset, user_env, tmp_path):
    env, calls = user_env
    clone = fresh_copy(tmp_path / "clone")
    argv = with_config(snakemake_command(readme_section("Real datasets")), dataset)
    target = "results/lavdf/features/shard-00000"  # before --configfile, which takes several values
    proc = subprocess.run([argv[0], target, *argv[1:]], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, output_of(proc, clone, out)
    assert not calls.exists(), calls.read_text()  # no job ran the PATH's python
    for rule in ("rule random_checkpoints:", "rule manifest:", "checkpoint shard_plan:", "rule extract_shard:"):
        assert rule in out, rule
    assert (clone / "results/lavdf/manifest.jsonl").read_text().count("\n") == 12
    assert (clone / "results/lavdf/features/shard-00000/index.json").is_file()


def _snakemake_child(pid: int) -> int | None:
    """The Snakemake process started by the wrapper of process ``pid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and any(a.endswith(b"/snakemake") for a in argv[:2]):
            return int(stat.parent.name)
    return None


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)")
def test_readme_pipeline_command_refuses_a_second_run_and_resumes_after_sigkill(dataset, user_env, tmp_path):
    env, calls = user_env
    clone = fresh_copy(tmp_path / "clone")
    (command,) = block_commands(readme_section("Real datasets"))
    argv = with_config(command, dataset)
    first_log = tmp_path / "first.log"
    with open(first_log, "w") as fh:
        first = subprocess.Popen(argv, cwd=clone, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        # Wait until the run is past its first jobs and is extracting features.
        deadline = time.monotonic() + TIMEOUT
        while not list((clone / "logs/lavdf/extract").glob("shard-*.log")):
            assert first.poll() is None, output_of(first, clone, first_log.read_text())
            assert time.monotonic() < deadline, "the run did not reach feature extraction"
            time.sleep(0.5)
        assert list((clone / ".snakemake/locks").iterdir())
        snakemake = _snakemake_child(first.pid)
        assert snakemake is not None, "no Snakemake process under the wrapper"

        # A second start beside the live run is refused: the lock of a live run is never removed.
        second = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout + second.stderr
        assert first.poll() is None and Path(f"/proc/{snakemake}").exists()

        # Snakemake itself is killed outright: its lock stays, its running jobs go on alone.
        os.kill(snakemake, signal.SIGKILL)
        first.wait(timeout=60)
        assert list((clone / ".snakemake/locks").iterdir())

        again = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        out = again.stdout + again.stderr
        assert again.returncode == 0, output_of(again, clone, out)
        assert "Removing the lock left by a Snakemake run that is no longer alive" in out
        report = clone / "results/lavdf/report.md"
        assert f"Evaluation report: {report}" in out
        assert "Temporal forgery localization" in report.read_text()
        assert not calls.exists(), calls.read_text()
        assert not list((clone / ".snakemake/locks").glob("*"))
    finally:
        try:  # whatever the killed run left (its jobs share the wrapper's session)
            os.killpg(first.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
