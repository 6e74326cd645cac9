"""Each video extracted once, and a bad checkpoint stopped before the fan-out (the workflow's side).

One small AV-Deepfake1M-format dataset (12 clips, shards of 8) is extracted through Snakemake;
then, as a user would:
(a) a new dev_fraction rebuilds the manifest: no extraction job;
(b) a new file list of 3 videos: only the new shard, the old shards untouched;
(c) a new crop_size: every shard, and the settings job says which setting changed.
Then a wrong checkpoint path and a checkpoint that needs trust each stop the run in the pre-flight
job, before any extract_shard job, with a message naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from extractors.checkpoints import write_tsn_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DS = "av1m"
SUMMARY = f"results/{DS}/features/summary.json"
PLAN = f"results/{DS}/shard_plan.json"
ZOO = "tsn_r50_1x1x3_100e_kinetics400_rgb_20200614-e508be42.pth"

pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, config: dict, *args, timeout=1200) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SNAKEMAKE_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "snakemake", *args, "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout + result.stderr


def scheduled(output: str, rule: str = "extract_shard") -> list[str]:
    """The shards a dry run's output schedules for ``rule``."""
    return sorted(re.findall(rf"rule {rule}:\n(?:    .*\n)*?    wildcards: dataset={DS}, shard=(\d+)", output))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, random_checkpoints):
    base = tmp_path_factory.mktemp("extract_once")
    root = base / "AV-Deepfake1M"
    subprocess.run([sys.executable, "-m", "wmmt.synthetic", "--out", str(root), "--format", "avdeepfake1m",
                    "--num-videos", "12", "--seed", "3", "--min-duration", "2", "--max-duration", "2.4",
                    "--workers", "2"], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    config = {
        "main_dataset": DS, "device": "cpu",
        "datasets": {DS: {"format": "avdeepfake1m", "root": str(root), "dev_fraction": 0.15,
                          "metadata": ["train_metadata.json", "val_metadata.json"]}},
        "extraction": {"shard_size": 8, "crop_size": 64, "resize": "decoder", "batch_frames": 64, "workers": 0,
                       "tsn_checkpoint": str(random_checkpoints["tsn"]), "trust_checkpoint": True,
                       "wav2vec2": str(random_checkpoints["w2v"])},
        "model": {"hidden": 32, "attn_dim": 64, "audio_dim": 32}, "ablations": False, "yardsticks": False,
        "cross_dataset": [],
    }
    return {"base": base, "root": root, "config": config}


@pytest.fixture(scope="module")
def extracted(dataset):
    workdir = dataset["base"] / "run"
    workdir.mkdir()
    out = ok(snakemake(workdir, dataset["config"], SUMMARY))
    assert len(re.findall(r"rule extract_shard:", out)) == 2
    return workdir


def _shards(workdir: Path) -> dict[str, tuple[int, int]]:
    shards = (workdir / f"results/{DS}/features").glob("shard-*")
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shards}


def test_a_rebuilt_manifest_with_the_same_videos_extracts_nothing(dataset, extracted):
    config = json.loads(json.dumps(dataset["config"]))
    config["datasets"][DS]["dev_fraction"] = 0.5
    manifest = extracted / f"results/{DS}/manifest.jsonl"
    before = manifest.read_text()
    ok(snakemake(extracted, config, PLAN))  # the manifest and the plan are rebuilt
    assert manifest.read_text() != before  # another dev split
    out = ok(snakemake(extracted, config, SUMMARY, "-n"))
    assert scheduled(out) == [] and "rule preflight" not in out
    dataset["config"] = config


def test_a_new_file_list_extracts_only_the_new_shard(dataset, extracted):
    root = dataset["root"]
    (root / "testA").mkdir()
    sources = sorted((root / "train").rglob("*.mp4"))[:3]
    names = [f"new{i}.mp4" for i in range(3)]
    for source, name in zip(sources, names):
        shutil.copy(source, root / "testA" / name)
    (root / "testA_files.txt").write_text("".join(n + "\n" for n in names))
    config = json.loads(json.dumps(dataset["config"]))
    config["datasets"][DS]["metadata"].append("testA_files.txt")
    before = _shards(extracted)
    ok(snakemake(extracted, config, PLAN))
    out = ok(snakemake(extracted, config, SUMMARY, "-n"))
    assert scheduled(out) == ["00002"]
    ok(snakemake(extracted, config, SUMMARY))
    after = _shards(extracted)
    assert {k: after[k] for k in before} == before  # the old shards were not touched
    index = json.loads((extracted / f"results/{DS}/features/shard-00002/index.json").read_text())
    assert [v["video_id"] for v in index["videos"]] == [f"testA/{n}" for n in names]
    summary = json.loads((extracted / SUMMARY).read_text())
    assert summary["videos"] == 15 and summary["shards"] == ["shard-00000", "shard-00001", "shard-00002"]
    dataset["config"] = config


def test_a_new_extraction_setting_extracts_everything_and_says_why(dataset, extracted):
    config = json.loads(json.dumps(dataset["config"]))
    config["extraction"]["crop_size"] = 48
    out = ok(snakemake(extracted, config, SUMMARY, "-n"))
    assert scheduled(out) == ["00000", "00001", "00002"]
    assert f"Input files updated by another job: results/{DS}/extraction/settings.json" in out
    # The speed settings and the device re-extract nothing.
    faster = json.loads(json.dumps(dataset["config"]))
    faster["extraction"].update(workers=1, batch_frames=32)
    faster["device"] = "cuda"
    out = ok(snakemake(extracted, faster, SUMMARY, "-n"))
    assert scheduled(out) == [] and "Nothing to be done" in out
    # The settings job says which setting makes the cache out of date.
    out = ok(snakemake(extracted, config, f"results/{DS}/extraction/settings.json"))
    assert f"results/{DS}/features: made with other extraction settings (crop_size: 64 -> 48)" in out


def _stopped_in_preflight(result: subprocess.CompletedProcess, workdir: Path) -> str:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "Error in rule preflight" in out, out[-3000:]
    assert "rule extract_shard" not in out and not (workdir / f"logs/{DS}/extract").exists()
    (line,) = [line for line in out.splitlines() if line.startswith("error: extraction pre-flight:")]
    return line


def test_a_wrong_checkpoint_path_stops_the_run_in_the_preflight(dataset, random_checkpoints):
    folder = dataset["base"] / "models"
    folder.mkdir()
    write_tsn_checkpoint(folder / ZOO, seed=1, form="mmcv0")
    asked = folder / "tsn_r50_1x1x3_100e_kinetics400_rgb.pth"
    config = json.loads(json.dumps(dataset["config"]))
    config["extraction"].update(tsn_checkpoint=str(asked), trust_checkpoint=False)
    workdir = dataset["base"] / "wrong_path"
    workdir.mkdir()
    line = _stopped_in_preflight(snakemake(workdir, config, SUMMARY), workdir)
    assert f"{asked}: checkpoint not found; its folder holds {ZOO}: did you mean {folder / ZOO}?" in line
    assert "set extraction.tsn_checkpoint in the workflow config" in line
    # The model zoo's name, a 0.x file with numpy in its metadata: it runs, without trust.
    config["extraction"]["tsn_checkpoint"] = str(folder / ZOO)
    out = ok(snakemake(workdir, config, f"results/{DS}/extraction/preflight.json"))
    assert "extraction pre-flight passed" in (workdir / f"logs/{DS}/extraction_preflight.log").read_text(), out


def test_a_checkpoint_needing_trust_stops_the_run_in_the_preflight(dataset):
    path = dataset["base"] / "models_untrusted" / ZOO
    path.parent.mkdir()
    state = torch.load(write_tsn_checkpoint(path, seed=1, form="mmcv0"), weights_only=False)
    state["meta"]["args"] = __import__("argparse").Namespace(lr=0.01)  # an object beyond numpy
    torch.save(state, path)
    config = json.loads(json.dumps(dataset["config"]))
    config["extraction"].update(tsn_checkpoint=str(path), trust_checkpoint=False)
    workdir = dataset["base"] / "untrusted"
    workdir.mkdir()
    line = _stopped_in_preflight(snakemake(workdir, config, SUMMARY), workdir)
    assert f"{path}: checkpoint needs full unpickling" in line and "argparse.Namespace" in line
    assert "trust_checkpoint: true in the workflow config's extraction section" in line
