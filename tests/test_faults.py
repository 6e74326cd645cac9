"""Faults: processes killed mid-work, a full disk, an unwritable output folder.

Each kill test SIGKILLs (or SIGTERMs) the real process while it works, checks that nothing
half-written looks finished, reruns, and compares the result with an uninterrupted run,
byte for byte. The disk tests mount a tiny tmpfs (root only; skipped with a message where
mounting is not permitted) or aim the output at a path under a regular file (works anywhere).
The table of faults and the test that shows each is docs/robustness.md.

Marked e2e: the kill-and-rerun tests, the whole workflow, and the extraction CLI on the module's
eight 4 s clips; the train CLI's error cases stay in the fast loop.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from extractors.cache import FeatureCache, check_shard, summarize
from model.train import train
from tests.helpers.clips import make_clip
from tests.helpers.processes import one_thread_env
from tests.helpers.tiny_pipeline import failure_text, tiny_pipeline
from tests.helpers.training import make_synthetic, tiny_model_config, tiny_train_config, train_cli_argv
from wmmt.io import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE_CONFIG = ROOT / ".test" / "config.yaml"


# --------------------------------------------------------------------------- helpers


def _start(argv: list[str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a command in its own process group, output to ``log``."""
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, cwd=cwd, env=one_thread_env(), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _run(argv: list[str], cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=one_thread_env(), capture_output=True, text=True, timeout=timeout)


def _wait_until(condition, proc: subprocess.Popen, what: str, log: Path, timeout: float = 300,
                interval: float = 0.01) -> None:
    """Poll ``condition`` while ``proc`` runs; fail if it ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}; its output:\n"
                        f"{log.read_text(errors='replace')[-4000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def _kill(proc: subprocess.Popen, sig=signal.SIGKILL, group: bool = True) -> int:
    assert proc.poll() is None, "the process had already ended: nothing was interrupted"
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    return proc.wait(timeout=300)


def _tmp_parts(folder: Path) -> list[Path]:
    """Temporary names of wmmt.io.atomic_path / atomic_dir (``.<name>.<random>.tmp``)."""
    return sorted(p for p in folder.rglob(".*.tmp*"))


def _state_dicts_equal(a: Path, b: Path) -> None:
    wa = torch.load(a, map_location="cpu", weights_only=True)
    wb = torch.load(b, map_location="cpu", weights_only=True)
    assert wa["step"] == wb["step"]
    assert wa["model"].keys() == wb["model"].keys()
    for key in wa["model"]:
        assert torch.equal(wa["model"][key], wb["model"][key]), f"{a} vs {b}: {key} differs"
    for i, state in wa["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, wb["optimizer"]["state"][i][name]), f"optimizer {i}.{name} differs"


def _log_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _shards_equal(a: Path, b: Path) -> None:
    for name in ("visual.npy", "audio.npy", "timestamps.npy"):
        assert np.array_equal(np.load(a / name), np.load(b / name)), f"{a / name} differs from {b / name}"
    def without_paths(obj):  # the two runs live in different folders; everything else must agree
        if isinstance(obj, dict):
            return {k: without_paths(v) for k, v in obj.items() if k != "path"}
        return [without_paths(v) for v in obj] if isinstance(obj, list) else obj

    for name in ("index.json", "failures.json"):
        assert without_paths(json.loads((a / name).read_text())) == without_paths(json.loads((b / name).read_text()))


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "64k", read_only: bool = False):
    """A tiny tmpfs at ``path`` (a full disk, or a read-only one); skips where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full or read-only disk (needs root): "
                    f"{result.stderr.strip() or result.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --------------------------------------------------------------------------- extraction


@pytest.fixture(scope="module")
def extraction(tmp_path_factory, random_checkpoints):
    """Random-weight checkpoints, eight 4 s clips and their manifest."""
    root = tmp_path_factory.mktemp("faults_extract")
    tsn, w2v = random_checkpoints["tsn"], random_checkpoints["w2v"]
    clips = [make_clip(root / f"clip{i}.mp4", seconds=4.0, seed=10 + i) for i in range(8)]
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"video_id": f"v{i}.mp4", "path": str(p)}) + "\n"
                                for i, p in enumerate(clips)))
    models = ["--tsn-checkpoint", str(tsn), "--trust-checkpoint", "--wav2vec2", str(w2v), "--crop-size", "32",
              "--batch-frames", "16", "--no-progress"]

    def argv(out: Path) -> list[str]:
        return [sys.executable, "-m", "extractors.shard", "--manifest", str(manifest), "--shard", "0",
                "--shard-size", "8", "--out", str(out), *models]

    reference = root / "reference" / "shard-00000"
    result = _run(argv(reference))
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "argv": argv, "reference": reference, "models": models}


@pytest.mark.e2e
def test_shard_killed_mid_shard_leaves_nothing_finished_and_the_rerun_matches(extraction):
    out = extraction["root"] / "killed" / "shard-00000"
    log = extraction["root"] / "killed.log"
    proc = _start(extraction["argv"](out), log)
    # The first video's features are in the temporary folder: the shard is half done.
    _wait_until(lambda: any(p.stat().st_size > 0 for p in out.parent.glob(".shard-00000.*.tmp/visual.raw")),
                proc, "the first video was written", log)
    assert _kill(proc) == -signal.SIGKILL
    assert not out.exists() and check_shard(out) == "folder missing"
    leftovers = list(out.parent.glob(".shard-00000.*.tmp"))
    assert len(leftovers) == 1  # the killed run's parts, under a name the cache never reads
    cache = FeatureCache(out.parent)
    assert len(cache) == 0 and cache.skipped == {} and cache.failures() == []
    with pytest.raises(ValueError, match="no shards"):
        summarize(out.parent)

    result = _run(extraction["argv"](out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert check_shard(out) is None
    assert not list(out.parent.glob(".shard-00000.*.tmp"))  # the rerun removed the killed run's parts
    _shards_equal(out, extraction["reference"])
    assert FeatureCache(out.parent).video_ids() == [f"v{i}.mp4" for i in range(8)]


@pytest.mark.e2e
def test_shard_cli_on_a_full_disk_is_one_clear_error_and_leaves_nothing(extraction, tmp_path):
    with _tmpfs(tmp_path / "disk", size="64k") as disk:
        out = disk / "features" / "shard-00000"
        result = _run(extraction["argv"](out))
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: {out}: cannot write output: no space left on device"], result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert not out.exists() and not _tmp_parts(disk)  # the partial shard went with the error


@pytest.mark.e2e
def test_extract_cli_on_a_full_disk_is_one_clear_error(extraction, tmp_path):
    models = [m for m in extraction["models"] if m != "--no-progress"]
    with _tmpfs(tmp_path / "disk", size="64k") as disk:
        out = disk / "clip0.npz"
        result = _run([sys.executable, "-m", "extractors.extract", "--video", str(extraction["root"] / "clip0.mp4"),
                       "--out", str(out), *models])
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: {out}: cannot write output: no space left on device"], result.stderr[-3000:]
        assert "Traceback" not in result.stderr and not out.exists() and not _tmp_parts(disk)


@pytest.mark.e2e
def test_shard_cli_on_a_read_only_disk_is_one_clear_error(extraction, tmp_path):
    with _tmpfs(tmp_path / "ro", read_only=True) as disk:
        out = disk / "features" / "shard-00000"
        result = _run(extraction["argv"](out))
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: {out}: cannot write output: folder is not writable"], result.stderr[-3000:]
        assert not (disk / "features").exists()


@pytest.mark.e2e
def test_shard_cli_output_under_a_file_is_one_clear_error(extraction, tmp_path):
    # Works without root: a regular file where a folder of the output path should be.
    (tmp_path / "results").write_text("a file, not a folder\n")
    out = tmp_path / "results" / "features" / "shard-00000"
    result = _run(extraction["argv"](out))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {out}: cannot write output:"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- training


@pytest.mark.e2e
def test_training_killed_mid_epoch_resumes_to_identical_weights(tmp_path):
    # Checkpoints every 4 steps, 3 steps an epoch: the checkpoint at step 4 is mid-epoch.
    base = train_cli_argv(tmp_path, max_steps=40, eval_every=4)
    reference, run = tmp_path / "reference", tmp_path / "run"
    result = _run([*base, "--out", str(reference)])
    assert result.returncode == 0, result.stderr[-3000:]

    log = tmp_path / "run.log"
    proc = _start([*base, "--out", str(run)], log)
    _wait_until(lambda: (run / "last.pt").exists(), proc, "the first checkpoint", log)
    assert _kill(proc) == -signal.SIGKILL
    first = load_checkpoint(run / "last.pt")  # whole, and loadable weights-only
    assert 0 < first["step"] < 40 and first["step"] % 4 == 0

    # Killed again, this time as soon as a new checkpoint appears (possibly while the log and
    # the curves are written): last.pt is still either the old file or the new one, whole.
    stamp = (run / "last.pt").stat().st_mtime_ns
    proc = _start([*base, "--out", str(run)], log)
    _wait_until(lambda: (run / "last.pt").stat().st_mtime_ns != stamp, proc, "a newer checkpoint", log,
                interval=0.002)
    assert _kill(proc) == -signal.SIGKILL
    second = load_checkpoint(run / "last.pt")
    assert first["step"] < second["step"] < 40

    result = _run([*base, "--out", str(run)])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 40
    assert summary["weights_sha256"] == json.loads((reference / "model_card.json").read_text())["weights_sha256"]
    for name in ("last.pt", "best.pt"):
        _state_dicts_equal(run / name, reference / name)
    assert _log_rows(run / "train_log.csv") == _log_rows(reference / "train_log.csv")


class _Killed(BaseException):
    """Stands for SIGKILL: nothing in the code under test catches it."""


@pytest.mark.e2e
def test_training_killed_after_any_output_file_resumes_identically(tmp_path, monkeypatch):
    """A kill between any two of the files an interval writes (best.pt, last.pt, train_log.csv,
    curves.png, model_card.json): the resumed run ends with the weights and the log of an
    uninterrupted one."""
    manifest, cache, _ = make_synthetic(n_videos=16, n_dev=4)
    cfg = tiny_model_config(dropout=0.3)
    train_cfg = tiny_train_config(max_steps=6, eval_every=3)  # 3 steps an epoch; intervals at 3 and 6
    straight = tmp_path / "straight"
    train(cfg, train_cfg, manifest, cache, straight, progress=False)

    real_replace = os.replace
    written: list[str] = []

    def replace_then_die(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).parent == target:
            written.append(Path(dst).name)
            if len(written) == kill_after:
                raise _Killed(f"killed after writing {Path(dst).name}")

    monkeypatch.setattr(os, "replace", replace_then_die)
    target, kill_after = tmp_path / "count", 0
    train(cfg, train_cfg, manifest, cache, target, progress=False)
    sequence = list(written)
    assert sequence[-1] == "model_card.json" and sequence.count("last.pt") == 2
    for kill_after in range(1, len(sequence)):
        target = tmp_path / f"killed-after-{kill_after}"
        written.clear()
        with pytest.raises(_Killed):
            train(cfg, train_cfg, manifest, cache, target, progress=False)
        if (target / "last.pt").exists():
            assert load_checkpoint(target / "last.pt")["step"] in (3, 6)
        monkeypatch.setattr(os, "replace", real_replace)
        train(cfg, train_cfg, manifest, cache, target, progress=False)
        monkeypatch.setattr(os, "replace", replace_then_die)
        where = f"killed after {sequence[kill_after - 1]} (write {kill_after} of {sequence})"
        for name in ("last.pt", "best.pt"):
            _state_dicts_equal(target / name, straight / name)
        assert _log_rows(target / "train_log.csv") == _log_rows(straight / "train_log.csv"), where
        assert (target / "curves.png").is_file() and (target / "model_card.json").is_file(), where


def test_train_cli_on_a_full_disk_is_one_clear_error_and_leaves_no_checkpoint(tmp_path):
    base = train_cli_argv(tmp_path / "inputs", max_steps=2, eval_every=2)
    with _tmpfs(tmp_path / "disk", size="64k") as disk:
        run = disk / "run"
        result = _run([*base, "--out", str(run)])
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "no space left on device" in errors[0], result.stderr[-3000:]
        assert str(run) in errors[0] and "Traceback" not in result.stderr
        assert not (run / "last.pt").exists() and not _tmp_parts(disk)


def test_train_cli_output_under_a_file_is_one_clear_error(tmp_path):
    base = train_cli_argv(tmp_path / "inputs", max_steps=2, eval_every=2)
    (tmp_path / "runs").write_text("a file, not a folder\n")
    run = tmp_path / "runs" / "full"
    result = _run([*base, "--out", str(run)])
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {run}"), result.stderr[-3000:]
    assert "cannot write output" in errors[0] and "Traceback" not in result.stderr


def test_train_cli_on_a_read_only_disk_is_one_clear_error(tmp_path):
    base = train_cli_argv(tmp_path / "inputs", max_steps=2, eval_every=2)
    with _tmpfs(tmp_path / "ro", read_only=True) as disk:
        result = _run([*base, "--out", str(disk / "run")])
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "folder is not writable" in errors[0], result.stderr[-3000:]


# --------------------------------------------------------------------------- the workflow


def _snakemake(workdir: Path, *args: str) -> list[str]:
    # The tiny scenario without the ablation tables, the seed study and the cross-dataset run: the DAG of one
    # dataset (synthetic data, manifest, two extraction shards, training, prediction,
    # evaluation, report) in about half a minute.
    override = workdir.parent / f"{workdir.name}-override.yaml"
    override.write_text("ablations: false\nyardsticks: false\ncross_dataset: []\nseed_study: {in_report: false}\n")
    return [sys.executable, "-m", "snakemake", *args, "--snakefile", str(ROOT / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(SNAKEMAKE_CONFIG), str(override), "--cores", "2"]


def _prepare_dataset_with_a_corrupt_test_video(workdir: Path) -> str:
    """Generate the synthetic dataset, then cut one test-split mp4 in half (in place); its video_id."""
    result = _run(_snakemake(workdir, "resources/synthetic"), timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    records = json.loads((workdir / "resources/synthetic/metadata.json").read_text())
    video_id = sorted(r["file"] for r in records if r["split"] == "test")[0]
    path = workdir / "resources/synthetic" / video_id
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    return video_id


@pytest.fixture(scope="module")
def workflows(tmp_path_factory):
    """The tiny workflow SIGTERMed during extraction, SIGKILLed during training, then finished; beside the
    session's uninterrupted run of the same DAG (tests.helpers.tiny_pipeline: the same data, extraction
    and training; it also builds the ablations, the seed study and the cross-dataset run, left out here)."""
    try:
        reference = tiny_pipeline(tmp_path_factory)
    except RuntimeError as exc:
        pytest.fail(f"the uninterrupted run: {exc}")
    killed = tmp_path_factory.mktemp("faults_workflow") / "killed"
    info = {"reference": reference, "killed": killed}
    root = killed.parent
    log = root / "killed.log"
    features = killed / "results/synthetic/features"

    # 1. SIGTERM to Snakemake while the shards are extracted: it lets running jobs end, starts
    #    no new one, and releases its lock.
    proc = _start(_snakemake(killed, "results/synthetic/report.md"), log)
    _wait_until(lambda: (killed / "logs/synthetic/extract/shard-00000.log").exists(), proc, "extraction started",
                log, interval=0.05)
    info["sigterm_exit"] = _kill(proc, signal.SIGTERM, group=False)
    info["shards_after_sigterm"] = {p.name: check_shard(p) for p in features.glob("shard-*")}
    info["locks_after_sigterm"] = sorted(p.name for p in (killed / ".snakemake/locks").glob("*"))

    # 2. SIGKILL to Snakemake and its jobs once training has started: the lock stays behind.
    proc = _start(_snakemake(killed, "results/synthetic/report.md"), log)
    _wait_until(lambda: (killed / "logs/synthetic/train/full.log").exists(), proc, "training started", log,
                interval=0.05)
    info["sigkill_exit"] = _kill(proc, signal.SIGKILL)
    finished = [*features.glob("shard-*/*.npy"), features / "summary.json", killed / "results/synthetic/manifest.jsonl"]
    info["mtimes"] = {str(p): p.stat().st_mtime_ns for p in finished}
    info["dry_run"] = _run(_snakemake(killed, "results/synthetic/report.md", "-n"))
    info["locked_run"] = _run(_snakemake(killed, "results/synthetic/report.md"))
    assert _run(_snakemake(killed, "--unlock")).returncode == 0
    info["rerun"] = _run(_snakemake(killed, "results/synthetic/report.md"), timeout=900)
    assert info["rerun"].returncode == 0, failure_text(killed, info["rerun"])
    return info


@pytest.mark.e2e
def test_workflow_sigterm_during_extraction_leaves_complete_shards_and_no_lock(workflows):
    assert workflows["sigterm_exit"] != 0
    assert workflows["locks_after_sigterm"] == []
    assert all(problem is None for problem in workflows["shards_after_sigterm"].values()), \
        workflows["shards_after_sigterm"]


@pytest.mark.e2e
def test_workflow_killed_in_training_reruns_only_the_unfinished_jobs(workflows):
    assert workflows["sigkill_exit"] == -signal.SIGKILL
    dry = workflows["dry_run"].stdout + workflows["dry_run"].stderr
    assert workflows["dry_run"].returncode == 0, dry[-3000:]
    table = dry.split("Job stats:")[1].split("total")[0]  # "job count", dashes, then one "rule count" a line
    jobs = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, flags=re.MULTILINE)}
    assert jobs == {"train", "predict", "evaluate", "report_data", "report"}, dry[-3000:]
    # A lock left by SIGKILL needs `snakemake --unlock`, and Snakemake says so.
    locked = workflows["locked_run"]
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    # Finished work was not redone.
    for path, stamp in workflows["mtimes"].items():
        assert Path(path).stat().st_mtime_ns == stamp, f"{path} was rewritten by the rerun"


@pytest.mark.e2e
def test_workflow_resumed_results_equal_the_uninterrupted_run(workflows):
    ref, run = workflows["reference"] / "results/synthetic", workflows["killed"] / "results/synthetic"
    for shard in ("shard-00000", "shard-00001"):
        _shards_equal(run / "features" / shard, ref / "features" / shard)
    for name in ("best.pt", "last.pt"):
        _state_dicts_equal(run / "runs/full" / name, ref / "runs/full" / name)
    for name in ("predictions.json", "metrics.json"):
        assert json.loads((run / "runs/full/test" / name).read_text()) == \
            json.loads((ref / "runs/full/test" / name).read_text()), name
    assert not _tmp_parts(run)  # no temporary file of a killed job is left in results/


@pytest.mark.e2e
def test_workflow_with_a_corrupt_test_video_finishes_and_reports_it(tmp_path):
    workdir = tmp_path / "corrupt"
    corrupt = _prepare_dataset_with_a_corrupt_test_video(workdir)
    result = _run(_snakemake(workdir, "results/synthetic/report.md"), timeout=900)
    assert result.returncode == 0, failure_text(workdir, result)
    results = workdir / "results/synthetic"
    failures = json.loads((results / "features/summary.json").read_text())["failures"]
    assert [f["video_id"] for f in failures] == [corrupt]
    assert "not a readable video container" in failures[0]["reason"]
    predictions = json.loads((results / "runs/full/test/predictions.json").read_text())
    assert predictions[corrupt] == []  # a key with no proposals: its forged segments count as missed
    report = (results / "report.md").read_text()
    section = report.split("## Extraction failures")[1]
    assert "1 video(s) could not be decoded" in section and f"`{corrupt}`" in section
    assert "not a readable video container" in section
    # Every other video of the dataset was extracted.
    manifest = [json.loads(line) for line in (results / "manifest.jsonl").read_text().splitlines()]
    cache = FeatureCache(results / "features")
    assert set(cache.video_ids()) == {r["video_id"] for r in manifest} - {corrupt}

