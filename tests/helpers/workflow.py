"""The README's commands as a user runs them: its sections and command lines, a fresh copy of the
working tree, and a small LAV-DF-format folder outside it with the tiny settings of .test/config.yaml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def block_commands(section: str) -> list[str]:
    """The command lines of a section's ```bash blocks (comments dropped)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def fresh_copy(dest: Path) -> Path:
    """The working tree's files (tracked, and new ones git does not ignore), .venv linked in."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / ".venv").symlink_to(VENV)
    return dest


TINY_CONFIG = """\
main_dataset: lavdf
device: cpu
datasets:
  lavdf: {{format: lavdf, root: {root}, metadata: [metadata.json]}}
extraction:   # as .test/config.yaml
  shard_size: 8
  crop_size: 64
  tsn_checkpoint: resources/checkpoints/tsn_r50_random.pth
  wav2vec2: resources/checkpoints/wav2vec2_random
  trust_checkpoint: true
  random_checkpoints: {{seed: 0, wav2vec2_size: tiny}}
  workers: 0
  batch_frames: 64
  bf16: false
model: {{hidden: 32, attn_dim: 64, audio_dim: 32}}
train: {{batch_size: 4, lr: 1.0e-3, max_steps: 6, eval_every: 3, log_every: 3, num_workers: 0}}
ablations: false
yardsticks: false
cross_dataset: []
report: {{timelines: 2, tsne_videos: 50}}
"""


def tiny_lavdf_config(base: Path) -> Path:
    """A 12-video LAV-DF-format folder ``base/LAV-DF`` (``python -m wmmt.synthetic``) and the tiny config
    that reads it, ``base/lavdf_tiny.yaml`` (returned)."""
    root = base / "LAV-DF"
    subprocess.run([sys.executable, "-m", "wmmt.synthetic", "--out", str(root), "--num-videos", "12",
                    "--seed", "0", "--min-duration", "3", "--max-duration", "3.5", "--workers", "2"],
                   cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    config = base / "lavdf_tiny.yaml"
    config.write_text(TINY_CONFIG.format(root=root))
    return config
