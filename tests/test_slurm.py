"""The workflow through a real SLURM cluster, with the shipped profile (workflow/profiles/slurm).

A private single-node SLURM is installed (Debian packages, when missing) and started by
tests/helpers/slurm_cluster.py; its partitions are named after the ones the profile asks for, and
its node announces 16 CPUs and two stand-in GPUs, so the profile is used unchanged on a
2-core CPU machine. Only the settings a test machine needs are added on the command line:
no account, the first status check after 1 s instead of 40 s, and then one a second.

What is checked:
* without root or apt-get, the cluster helper says why it cannot start (what the skip shows);
* a tiny workflow with the real rule names: each job ran as a SLURM job (the job
  completion log and the plugin's per-job logs), GPU rules got the GPU partition, one GPU
  and their threads as CPUs, grouped rules shared one SLURM job, a rerun of the same command
  redoes only what is missing (resumption);
* a failing job is reported as failed, and the run ends instead of waiting forever
  (the status polling without an accounting database);
* the README's SLURM command as written, in a fresh copy, from a shell whose first `python` is not
  the project's, on the real tiny pipeline (.test/config.yaml, device cpu): every job runs the
  project's interpreter and the run gives the same manifest, features and metrics as the
  session's local run of it (tests.helpers.tiny_pipeline).

Skipped, with the reason, where SLURM cannot be started (not root, no apt-get, daemons
that do not come up). Every command runs under `timeout -k`.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import slurm_cluster
from tests.helpers.slurm_cluster import SlurmCluster, SlurmUnavailable
from tests.helpers.tiny_pipeline import tiny_pipeline
from tests.helpers.workflow import block_commands, fresh_copy, readme_section

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
VENV_BIN = ROOT / ".venv" / "bin"
CLUSTER_ROOT = Path("/tmp/wmmt-slurm-test")

# Test-machine settings on top of the profile: no accounts on this cluster; a first status
# check after 1 s and one every second after it (the profile's 40 s and Snakemake's 10 s suit a
# busy cluster, not jobs of a few seconds each in a row).
SLURM_TEST_ARGS = ["--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
                   "--seconds-between-status-checks", "1"]


def profile_settings() -> dict:
    with open(PROFILE / "config.yaml") as fh:
        return yaml.safe_load(fh)


def profile_partitions() -> tuple[str, ...]:
    """The default partition first, then every partition a rule is sent to."""
    prof = profile_settings()
    names = [prof["default-resources"]["slurm_partition"]]
    names += [res["slurm_partition"] for res in prof.get("set-resources", {}).values() if "slurm_partition" in res]
    return tuple(dict.fromkeys(names))


@pytest.fixture(scope="module")
def cluster():
    if not (VENV_BIN / "snakemake").exists():
        pytest.skip(f"snakemake is not installed in {VENV_BIN}")
    c = SlurmCluster(CLUSTER_ROOT, cpus=16, partitions=profile_partitions(), gpus=2)
    try:
        c.start()
    except SlurmUnavailable as exc:
        pytest.skip(f"SLURM cannot be started on this machine: {exc}")
    try:
        yield c
    finally:
        c.stop()
        c.release()


def snakemake_env(cluster: SlurmCluster | None) -> dict:
    """The venv first on PATH (the jobs run `python -m ...`), the repo importable from any workdir."""
    env = cluster.env() if cluster else dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def run_snakemake(args: list[str], workdir: Path, env: dict, timeout: int) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-k", "10", str(timeout), str(VENV_BIN / "snakemake"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)
    return proc


def jobs_of(cluster: SlurmCluster, workdir: Path) -> list[dict[str, str]]:
    """The finished SLURM jobs that ran in `workdir`, from the job completion log."""
    return [r for r in cluster.jobcomp_records() if r.get("WorkDir") == str(workdir)]


def slurm_log_dirs(workdir: Path) -> set[str]:
    """What ran as SLURM jobs, from the plugin's per-job log folders: `rule_<rule>` for a
    single job, `group_<group>` for a group job (its folder is group_<group>_<rules>)."""
    logs = workdir / ".snakemake" / "slurm_logs"
    names = set()
    for p in logs.iterdir() if logs.exists() else ():
        names.add("_".join(p.name.split("_")[:2]) if p.name.startswith("group_") else p.name)
    return names


def fail_message(proc: subprocess.CompletedProcess, cluster: SlurmCluster) -> str:
    return f"exit {proc.returncode}\n{(proc.stdout + proc.stderr)[-6000:]}\n{cluster.logs()}"


def test_cluster_says_why_it_cannot_start(monkeypatch, tmp_path):
    """Where SLURM cannot be had, start() raises SlurmUnavailable with the reason (the fixture skips with it)."""
    monkeypatch.setattr(slurm_cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(SlurmUnavailable, match="needs root"):
        SlurmCluster(tmp_path / "c").start()
    monkeypatch.setattr(slurm_cluster.shutil, "which", lambda name: None)
    with pytest.raises(SlurmUnavailable, match="installing it needs root"):
        slurm_cluster.ensure_installed()
    monkeypatch.setattr(slurm_cluster.os, "geteuid", lambda: 0)
    with pytest.raises(SlurmUnavailable, match="apt-get is not available"):
        slurm_cluster.ensure_installed()
    assert not (tmp_path / "c").exists()  # nothing was written


TINY_SNAKEFILE = textwrap.dedent(
    r"""
    # Real rule names, so that the profile's set-resources and groups apply to them.
    SHARDS = ["00000", "00001"]

    rule all:
        input: "report.txt"

    rule manifest:
        output: "manifest.txt"
        threads: 1
        resources: mem_mb=300, runtime=5
        shell: "scontrol show job $SLURM_JOB_ID > {output}"

    rule extract_shard:
        input: "manifest.txt"
        output: "features/shard-{shard}.txt"
        threads: 3
        resources: gpu=1, mem_mb=300, runtime=5
        shell: "scontrol show job $SLURM_JOB_ID > {output}; echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES >> {output}"

    rule evaluate:
        input: expand("features/shard-{shard}.txt", shard=SHARDS)
        output: "metrics.txt"
        threads: 1
        resources: mem_mb=300, runtime=5
        shell: "scontrol show job $SLURM_JOB_ID > {output}"

    rule report:
        input: "metrics.txt"
        output: "report.txt"
        threads: 1
        resources: mem_mb=300, runtime=5
        shell: "scontrol show job $SLURM_JOB_ID > {output}"
    """
)


def job_field(text: str, key: str) -> str:
    for token in text.split():
        if token.startswith(f"{key}="):
            return token.split("=", 1)[1]
    raise AssertionError(f"no {key}= in:\n{text}")


@pytest.mark.e2e
def test_profile_sends_each_rule_to_slurm_with_its_resources(cluster, tmp_path):
    work = tmp_path / "tiny"
    work.mkdir()
    (work / "Snakefile").write_text(TINY_SNAKEFILE)
    env = snakemake_env(cluster)
    args = ["--snakefile", str(work / "Snakefile"), "--profile", str(PROFILE), *SLURM_TEST_ARGS]

    proc = run_snakemake(args, work, env, timeout=150)
    assert proc.returncode == 0, fail_message(proc, cluster)
    assert (work / "report.txt").exists()

    prof = profile_settings()
    cpu_part = prof["default-resources"]["slurm_partition"]
    gpu_part = prof["set-resources"]["extract_shard"]["slurm_partition"]
    gpu_cpus = prof["set-resources"]["extract_shard"].get("cpus_per_task", 3)  # else the rule's threads

    # Every output was written inside a SLURM job, and SLURM says each of those jobs completed.
    jobs = {r["JobId"]: r for r in jobs_of(cluster, work)}
    outputs = ["manifest.txt", "features/shard-00000.txt", "features/shard-00001.txt", "metrics.txt", "report.txt"]
    job_ids = {}
    for out in outputs:
        text = (work / out).read_text()
        job_ids[out] = job_field(text, "JobId")
        assert jobs[job_ids[out]]["JobState"] == "COMPLETED", jobs[job_ids[out]]

    # GPU rules: the GPU partition, one GPU, the rule's threads as CPUs; others the default partition.
    for shard in ("00000", "00001"):
        text = (work / f"features/shard-{shard}.txt").read_text()
        assert job_field(text, "Partition") == gpu_part
        assert "gres:gpu:1" in job_field(text, "TresPerJob")
        assert job_field(text, "NumCPUs") == str(gpu_cpus)
        assert "CUDA_VISIBLE_DEVICES=0" in text or "CUDA_VISIBLE_DEVICES=1" in text
    assert job_field((work / "manifest.txt").read_text(), "Partition") == cpu_part
    assert "gpu" not in job_field((work / "manifest.txt").read_text(), "TRES")

    # Grouped small rules share one SLURM job; the two shards are two jobs.
    assert job_ids["metrics.txt"] == job_ids["report.txt"]
    assert job_ids["features/shard-00000.txt"] != job_ids["features/shard-00001.txt"]
    assert len(jobs) == 4, jobs
    assert {"group_summarise", "group_prepare", "rule_extract_shard"} <= slurm_log_dirs(work)

    # Resumption: the same command again submits nothing. After a run stopped half-way
    # (one shard and the summaries missing), it redoes exactly those.
    proc = run_snakemake(args, work, env, timeout=60)
    assert proc.returncode == 0, fail_message(proc, cluster)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert len(jobs_of(cluster, work)) == 4
    for out in ("features/shard-00001.txt", "metrics.txt", "report.txt"):
        (work / out).unlink()
    proc = run_snakemake(args, work, env, timeout=150)
    assert proc.returncode == 0, fail_message(proc, cluster)
    new = [r for r in jobs_of(cluster, work) if r["JobId"] not in jobs]
    assert len(new) == 2, new  # the shard, then the summarise group
    assert all(r["JobState"] == "COMPLETED" for r in new)
    assert job_field((work / "manifest.txt").read_text(), "JobId") == job_ids["manifest.txt"]
    assert job_field((work / "features/shard-00000.txt").read_text(), "JobId") == job_ids["features/shard-00000.txt"]


@pytest.mark.e2e
def test_failed_job_is_reported_and_the_run_ends(cluster, tmp_path):
    work = tmp_path / "failing"
    work.mkdir()
    (work / "Snakefile").write_text(textwrap.dedent(
        """
        rule all:
            input: "ok.txt", "bad.txt"
        rule good:
            output: "ok.txt"
            resources: mem_mb=300, runtime=5
            shell: "echo fine > {output}"
        rule bad:
            output: "bad.txt"
            resources: mem_mb=300, runtime=5
            shell: "echo broken >&2; exit 3"
        """
    ))
    args = ["--snakefile", str(work / "Snakefile"), "--profile", str(PROFILE), *SLURM_TEST_ARGS, "--retries", "0"]
    proc = run_snakemake(args, work, snakemake_env(cluster), timeout=150)
    assert proc.returncode not in (0, 124, 137), fail_message(proc, cluster)  # failed, not timed out
    assert "Error in rule bad" in proc.stdout + proc.stderr
    assert (work / "ok.txt").exists()  # keep-going: the other job still ran
    states = sorted(r["JobState"] for r in jobs_of(cluster, work))
    assert states == ["COMPLETED", "FAILED"], states


# The real pipeline: the tiny CI scenario, up to the main dataset's metrics.
PIPELINE_TARGETS = ["results/synthetic/features/summary.json", "results/synthetic/runs/full/test/metrics.json"]


def read_manifest(path: Path, workdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:  # absolute paths differ between the two working directories
        row["path"] = os.path.relpath(row["path"], workdir)
    return rows


def assert_close_json(a, b, where: str = ""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close_json(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close_json(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6, nan_ok=True), where
    else:
        assert a == b, where


def _user_shell(cluster: SlurmCluster, tmp_path: Path) -> tuple[dict, Path]:
    """A user's shell on the login node: no project .venv on PATH, a first `python` that is not the
    project's (it logs its calls and fails), the cluster's SLURM settings. (env, its call log)."""
    import shutil

    stub_dir = tmp_path / "user_bin"
    stub_dir.mkdir()
    calls = stub_dir / "calls.log"
    (stub_dir / "python").write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{calls}'\nexit 1\n")
    (stub_dir / "python").chmod(0o755)
    env = {k: v for k, v in cluster.env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "SNAKEMAKE_PROFILE")}
    env["PATH"] = os.pathsep.join([str(stub_dir)] + [p for p in env.get("PATH", "").split(os.pathsep)
                                                     if p and Path(p).resolve() != VENV_BIN.resolve()])
    assert shutil.which("python", path=env["PATH"]) == str(stub_dir / "python")
    return env, calls


@pytest.mark.e2e
def test_readme_slurm_command_runs_the_pipeline_with_the_projects_python_as_a_local_run(cluster, tmp_path,
                                                                                     tmp_path_factory):
    """The README's SLURM commands as written, in a fresh copy of the working tree, from a shell without the
    project's .venv on PATH and a first `python` that is not the project's: the jobs (on the node, through
    the plugin's job-step Snakemake) run the interpreter that runs Snakemake. The config is the tiny
    scenario (.test/config.yaml) with the targets up to the full model's test metrics; only this test
    machine's SLURM settings are added. Its manifest, features and metrics equal the session's local run
    of the same config (tests.helpers.tiny_pipeline)."""
    import shlex

    from extractors.cache import FeatureCache

    setup, command = block_commands(readme_section("On a SLURM cluster"))
    assert setup == "bash workflow/run.sh setup"
    argv = shlex.split(command)
    assert argv[:3] == [".venv/bin/snakemake", "--profile", "workflow/profiles/slurm"] and "--configfile" in argv
    argv[argv.index("--configfile") + 1] = str(ROOT / ".test" / "config.yaml")
    try:
        local = tiny_pipeline(tmp_path_factory)
    except RuntimeError as exc:
        pytest.fail(f"the local run: {exc}")
    remote = fresh_copy(tmp_path / "clone")
    env, calls = _user_shell(cluster, tmp_path)

    proc = subprocess.run(["timeout", "-k", "10", "120", *shlex.split(setup)], cwd=remote, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The targets go before --configfile, which takes several values.
    proc = subprocess.run(["timeout", "-k", "10", "400", argv[0], *PIPELINE_TARGETS, *argv[1:], *SLURM_TEST_ARGS],
                          cwd=remote, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, fail_message(proc, cluster)
    assert not calls.exists(), calls.read_text()  # no job ran the PATH's python

    # The jobs went through SLURM, and all of them completed.
    jobs = jobs_of(cluster, remote)
    assert jobs and all(r["JobState"] == "COMPLETED" for r in jobs), jobs
    ran = slurm_log_dirs(remote)
    assert {"group_prepare", "rule_extract_shard", "rule_features", "rule_train", "rule_predict"} <= ran, ran

    ds = "results/synthetic"
    assert read_manifest(local / ds / "manifest.jsonl", local) == read_manifest(remote / ds / "manifest.jsonl", remote)
    a, b = FeatureCache(local / ds / "features"), FeatureCache(remote / ds / "features")
    assert sorted(a.video_ids()) == sorted(b.video_ids()) and a.video_ids()
    for vid in a.video_ids():
        fa, fb = a.get(vid), b.get(vid)
        np.testing.assert_allclose(fa.visual, fb.visual, rtol=1e-4, atol=1e-5, err_msg=vid)
        np.testing.assert_allclose(fa.audio, fb.audio, rtol=1e-4, atol=1e-5, err_msg=vid)
        np.testing.assert_array_equal(fa.timestamps, fb.timestamps, err_msg=vid)
    assert a.failures() == b.failures()
    metrics_a = json.loads((local / ds / "runs/full/test/metrics.json").read_text())
    metrics_b = json.loads((remote / ds / "runs/full/test/metrics.json").read_text())
    assert_close_json(metrics_a, metrics_b)
