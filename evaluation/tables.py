"""The paper's tables in its layout (mAP per IoU, average, AR per N, average), ours beside its numbers.

CLI (the workflow's ``ablation_table`` rule)::

    python -m evaluation.tables --table table_vii --runs results/D/runs --manifest results/D/manifest.jsonl \
        --dataset D --out results/D/tables/table_vii.md

Each row of a table names a trained variant, the head whose proposals are scored
("expert" = modality-aware selection) and the ground truth ("all" forged segments,
or the visual / audio ones for the single-modal tasks of Table IV); see
model.variants.PAPER_TABLES.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from evaluation.metrics import ap_at_iou, ar_at_n
from evaluation.paper_numbers import ABLATIONS, AP_IOUS, AR_NS
from model.variants import PAPER_TABLES
from wmmt.io import write_text

GROUND_TRUTH_COLUMNS = {"all": "fake_periods", "visual": "visual_fake_periods", "audio": "audio_fake_periods"}
PREDICTION_FILES = {"expert": "predictions.json", "visual": "predictions_visual.json",
                    "audio": "predictions_audio.json", "multimodal": "predictions_multimodal.json"}


def ground_truth(manifest, split: str = "test", kind: str = "all") -> dict[str, list]:
    """{video_id: [[start_s, end_s], ...]} of one split, from the manifest (evaluation only)."""
    rows = manifest[manifest["split"] == split]
    column = GROUND_TRUTH_COLUMNS[kind]
    return {vid: [list(map(float, seg)) for seg in segs] for vid, segs in zip(rows["video_id"], rows[column])}


def score_row(predictions: dict, truth: dict) -> tuple[list[float], list[float]]:
    """mAP at IoU 0.1..0.7 and AR@20/10/5/2 in percent, for the videos of ``truth``."""
    missing = [v for v in truth if v not in predictions]
    if missing:
        raise ValueError(f"predictions lack {len(missing)} evaluated video(s), e.g. {missing[0]}")
    preds = {v: predictions[v] for v in truth}
    ap = ap_at_iou(preds, truth, AP_IOUS)
    ar = ar_at_n(preds, truth, AR_NS)
    return [100 * ap[t] for t in AP_IOUS], [100 * ar[n] for n in AR_NS]


def _fmt(values) -> list[str]:
    return ["n/a" if v is None or not np.isfinite(v) else f"{v:.2f}" for v in values]


def markdown_table(rows: list[tuple[str, str, tuple | None]]) -> str:
    """Rows of (label, source, (ap values, ar values)) -> a Markdown table in the paper's layout."""
    head = (["", "source"] + [f"mAP@{t}" for t in AP_IOUS] + ["mAP avg"]
            + [f"AR@{n}" for n in AR_NS] + ["AR avg"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, source, values in rows:
        if values is None:
            cells = ["n/a"] * (len(AP_IOUS) + len(AR_NS) + 2)
        else:
            ap, ar = values
            cells = _fmt([*ap, float(np.mean(ap))]) + _fmt([*ar, float(np.mean(ar))])
        lines.append("| " + " | ".join([label, source, *cells]) + " |")
    return "\n".join(lines) + "\n"


def ablation_table(table: str, runs_dir, manifest, dataset: str) -> str:
    """One of Tables IV-VII, regenerated from the trained variants' test predictions."""
    title, rows = PAPER_TABLES[table]
    paper = ABLATIONS[table]
    out_rows = []
    cache: dict[Path, dict] = {}
    for row in rows:
        path = Path(runs_dir) / row.variant / "test" / PREDICTION_FILES[row.head]
        if path not in cache:
            with open(path, encoding="utf-8") as fh:
                cache[path] = json.load(fh)
        ours = score_row(cache[path], ground_truth(manifest, "test", row.ground_truth))
        out_rows.append((row.label, f"ours ({dataset}, variant `{row.variant}`)", ours))
        out_rows.append(("", "paper (LAV-DF)", paper[row.label]))
    note = ("Rows of the same variant share one trained model. Scored heads and ground truth: "
            + "; ".join(f"{r.label}: {r.head} head vs {GROUND_TRUTH_COLUMNS[r.ground_truth]}" for r in rows) + ".")
    return f"## {title}\n\n{markdown_table(out_rows)}\n{note}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.tables", description="Regenerate a paper table.")
    parser.add_argument("--table", required=True, choices=sorted(PAPER_TABLES))
    parser.add_argument("--runs", required=True, help="folder of trained variants (results/<dataset>/runs)")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--dataset", required=True, help="dataset name, for the table's labels")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from wmmt.manifest import load_manifest

    try:
        text = ablation_table(args.table, args.runs, load_manifest(args.manifest), args.dataset)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
