"""The paper's tables in its layout (mAP per IoU, average, AR per N, average), ours beside its numbers.

``main_results_table`` builds the report's Table I (or II) layout: WMMT, the fully
supervised reference trained on the same features (``model.supervised``; gated, and
ungated where its metrics hold the ``ungated`` block), a floor (one whole-video proposal per
video scored by the full model's P(fake)), the paper's rows, and the ratio of average mAP
WMMT / fully supervised beside the paper's.

CLI (the workflow's ``ablation_table`` rule)::

    python -m evaluation.tables --table table_vii --manifest results/D/manifest.jsonl --dataset D \
        --predictions results/D/runs/*/test/predictions*.json --out results/D/tables/table_vii.md

(``--predictions``: the files its rows score, ``<variant>/test/<file of the head>`` each;
extra files are ignored, a missing one is an error naming it.)

Each row of a table names a trained variant, the head whose proposals are scored
("expert" = modality-aware selection) and the ground truth ("all" forged segments,
or the visual / audio ones for the single-modal tasks of Table IV); see
model.variants.PAPER_TABLES.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from evaluation.paper_numbers import ABLATIONS, FULLY_SUPERVISED, INTRA_DATASET
from model.prediction_files import PREDICTION_FILES, read_classes, read_predictions
from model.variants import PAPER_TABLES
from wmmt.io import write_text
from wmmt.metrics import ap_at_iou, ar_at_n
from wmmt.vocab import AR_IOUS, EVAL_AP_IOUS, PAPER_AP_IOUS, PAPER_AR_NS, REAL

GROUND_TRUTH_COLUMNS = {"all": "fake_periods", "visual": "visual_fake_periods", "audio": "audio_fake_periods"}


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
    ap = ap_at_iou(preds, truth, PAPER_AP_IOUS)
    ar = ar_at_n(preds, truth, PAPER_AR_NS)
    return [100 * ap[t] for t in PAPER_AP_IOUS], [100 * ar[n] for n in PAPER_AR_NS]


def _fmt(values) -> list[str]:
    return ["n/a" if v is None or not np.isfinite(v) else f"{v:.2f}" for v in values]


def markdown_table(rows: list[tuple[str, str, tuple | None]]) -> str:
    """Rows of (label, source, (ap values, ar values)) -> a Markdown table in the paper's layout."""
    head = (["", "source"] + [f"mAP@{t}" for t in PAPER_AP_IOUS] + ["mAP avg"]
            + [f"AR@{n}" for n in PAPER_AR_NS] + ["AR avg"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, source, values in rows:
        if values is None:
            cells = ["n/a"] * (len(PAPER_AP_IOUS) + len(PAPER_AR_NS) + 2)
        else:
            ap, ar = values
            cells = _fmt([*ap, float(np.mean(ap))]) + _fmt([*ar, float(np.mean(ar))])
        lines.append("| " + " | ".join([label, source, *cells]) + " |")
    return "\n".join(lines) + "\n"


def metrics_row(metrics: dict) -> tuple[list[float], list[float]]:
    """A metrics.json -> (mAP at 0.1..0.7, AR@20/10/5/2) in percent."""
    def pct(value):  # null (no forged segment to find) stays undefined
        return float("nan") if value is None else 100 * value

    ap = [pct(metrics["ap"][_key(metrics["ap"], t)]) for t in PAPER_AP_IOUS]
    ar = [pct(metrics["ar"][_key(metrics["ar"], n)]) for n in PAPER_AR_NS]
    return ap, ar


def _key(table: dict, value) -> str:
    for k in table:
        if float(k) == float(value):
            return k
    raise KeyError(f"metrics lack {value} (have {sorted(table)})")


# --------------------------------------------------------------------------- Table I layout

REFERENCE_LABEL = "fully supervised reference (ours, same features)"
UNGATED_LABEL = "fully supervised reference, ungated (segments whatever its class)"
FLOOR_LABEL = "floor: one whole-video proposal per video, scored by P(fake)"
BASELINE_LABEL = "concatenation baseline (ours, weakly supervised; Table VII's first row)"


def floor_predictions(classes_path, manifest, split: str = "test") -> dict[str, list]:
    """One proposal per video of ``split``, ``[[P(fake), 0, duration]]`` with P(fake) = 1 - p0 from a
    model's classes.csv; a video whose extraction failed gets none, as in its own predictions."""
    rows = read_classes(classes_path)
    table = manifest[manifest["split"] == split]
    missing = [v for v in table["video_id"] if v not in rows]
    if missing:
        raise ValueError(f"{classes_path}: no row for {len(missing)} video(s) of split {split!r}, e.g. {missing[0]}")
    return {vid: [] if rows[vid]["failed"] else [[1.0 - rows[vid]["probs"][REAL], 0.0, float(duration)]]
            for vid, duration in zip(table["video_id"], table["duration"])}


def evaluation_settings(config: dict | None) -> dict:
    """The AP IoUs, AR Ns and AR IoUs the workflow's evaluate rule uses (config ``evaluation:``, else defaults)."""

    ev = (config or {}).get("evaluation", {})
    return {"ap_ious": list(dict.fromkeys(ev.get("ap_iou") or EVAL_AP_IOUS)),
            "ar_ns": list(dict.fromkeys(ev.get("ar_n") or PAPER_AR_NS)),
            "ar_ious": list(dict.fromkeys(ev.get("ar_iou") or AR_IOUS))}


def floor_metrics(classes_path, manifest, config: dict | None = None, split: str = "test") -> dict:
    """metrics.json-like scores of the floor, by the evaluator and settings of the evaluate rule."""
    from evaluation.evaluate import evaluate

    table = manifest[manifest["split"] == split].reset_index(drop=True)
    return evaluate(floor_predictions(classes_path, manifest, split), table, **evaluation_settings(config))


def map_ratio(weak: tuple | None, reference: tuple | None) -> float | None:
    """Average mAP (over IoU 0.1..0.7) of a weakly supervised row over a fully supervised one."""
    if weak is None or reference is None:
        return None
    num, den = float(np.mean(weak[0])), float(np.mean(reference[0]))
    return num / den if np.isfinite(num) and np.isfinite(den) and den > 0 else None


def main_results_table(dataset: str, fmt: str, wmmt: dict, reference: dict | None, floor: dict | None,
                       reference_note: str = "not built", baseline: dict | None = None,
                       intervals: dict | None = None) -> tuple[str, list]:
    """The report's main table (layout of Table I / II) and the ratio line; also the rows, for HTML.

    ``wmmt``, ``reference`` and ``floor`` are metrics.json dicts (``reference`` / ``floor``
    None when not built: their rows read n/a and ``reference_note`` says why). A reference's
    ``ungated`` block (``evaluation.evaluate --ungated``) gives a row of its own and a second ratio.
    ``baseline``: the concatenation baseline's metrics.json, a row and WMMT's gap to it (None: left out).
    ``intervals``: report_data's ``intervals`` (keys of evaluation.seed_study.COMPARISONS, each an
    interval dict): the ratio and the gap get their 95 % interval over the test videos.
    """
    intervals = intervals or {}

    def within(key: str) -> str:
        iv = intervals.get(key)
        return f" [95 % interval over the test videos {iv['low']:.2f}, {iv['high']:.2f}]" if iv else ""

    paper_title, paper_wmmt = INTRA_DATASET[fmt]
    fs_name, paper_fs = FULLY_SUPERVISED[fmt]
    ours = f"ours ({dataset})"
    wmmt_row = metrics_row(wmmt)
    reference_row = metrics_row(reference) if reference is not None else None
    ungated_row = metrics_row(reference["ungated"]) if reference is not None and "ungated" in reference else None
    baseline_row = metrics_row(baseline) if baseline is not None else None
    rows = [
        ("WMMT (ours, weakly supervised)", ours, wmmt_row),
        *([(BASELINE_LABEL, ours, baseline_row)] if baseline_row is not None else []),
        ("WMMT", f"paper, {paper_title}", paper_wmmt),
        (REFERENCE_LABEL, ours if reference is not None else f"ours ({dataset}): {reference_note}", reference_row),
        *([(UNGATED_LABEL, ours, ungated_row)] if ungated_row is not None else []),
        (f"{fs_name} (fully supervised)", f"paper, {paper_title}", paper_fs),
        (FLOOR_LABEL, ours, metrics_row(floor) if floor is not None else None),
    ]
    for subset, sub in sorted(wmmt.get("subsets", {}).items()):
        rows.append((f"WMMT, subset: {subset}", ours, metrics_row(sub)))
    ratio, paper_ratio = map_ratio(wmmt_row, reference_row), map_ratio(paper_wmmt, paper_fs)

    def avg(row) -> str:
        return f"{np.mean(row[0]):.2f}"

    if ratio is not None:
        ours_text = f"**{ratio:.2f}**{within('ratio_full_reference')} ({avg(wmmt_row)} / {avg(reference_row)})"
    elif reference_row is None:
        ours_text = f"n/a (reference {reference_note})"
    else:
        ours_text = f"n/a (the reference's average mAP is {avg(reference_row)})"
    ungated_ratio = map_ratio(wmmt_row, ungated_row)
    if ungated_ratio is not None:
        ours_text += (f"; against the reference ungated {ungated_ratio:.2f}{within('ratio_full_reference_ungated')} "
                      f"({avg(wmmt_row)} / {avg(ungated_row)})")
    line = (f"Average mAP, WMMT / fully supervised: ours {ours_text}; paper {paper_ratio:.2f} "
            f"(WMMT {avg(paper_wmmt)} / {fs_name} {avg(paper_fs)}, {paper_title}).")
    if baseline_row is not None:
        gap = float(np.mean(wmmt_row[0]) - np.mean(baseline_row[0]))
        line += (f" WMMT above the concatenation baseline: {gap:+.2f} avg mAP points"
                 f"{within('gap_full_concat_baseline')} "
                 f"({avg(wmmt_row)} - {avg(baseline_row)}; one training seed: the seed study gives the spread over "
                 "seeds).")
    note = ("The fully supervised reference is WMMT's network trained with the train split's forged "
            "timestamps (per-frame targets of its three heads, `python -m model.train --variant supervised`). It "
            "decides from its own frame evidence, not WMMT's video classifier: a track is forged when its head's "
            "largest frame score is above 0.5, which gives the class, and its segments come from h_m's per-frame "
            "scores through the same proposal generator and evaluator; gated, a video it calls genuine gets no "
            "segments, ungated it keeps them. The floor gives each test video the one proposal [0, duration] "
            "scored by P(fake) = 1 - p0 of the full WMMT's classifier: what video-level detection alone scores, "
            "without any localisation.")
    return f"{markdown_table(rows)}\n{line}\n\n{note}\n", [r for r in rows if r[2] is not None]


def row_files(table: str, predictions) -> dict[tuple[str, str], Path]:
    """{(variant, head): file} of a table's rows, found among ``predictions`` (paths ending in
    ``<variant>/test/<file of the head>``); a row without its file is an error naming it."""
    files = {}
    for row in PAPER_TABLES[table][1]:
        tail = (row.variant, "test", PREDICTION_FILES[row.head])
        found = [Path(p) for p in predictions if Path(p).parts[-3:] == tail]
        if not found:
            raise ValueError(f"{table}: row {row.label!r} needs {'/'.join(tail)} among the prediction files")
        files[row.variant, row.head] = found[0]
    return files


def ablation_table(table: str, predictions, manifest, dataset: str) -> str:
    """One of Tables IV-VII, regenerated from the trained variants' test predictions (the files)."""
    title, rows = PAPER_TABLES[table]
    paper = ABLATIONS[table]
    files = row_files(table, predictions)
    out_rows = []
    cache: dict[Path, dict] = {}
    for row in rows:
        path = files[row.variant, row.head]
        if path not in cache:
            cache[path] = read_predictions(path)
        ours = score_row(cache[path], ground_truth(manifest, "test", row.ground_truth))
        out_rows.append((row.label, f"ours ({dataset}, variant `{row.variant}`)", ours))
        if row.label in paper:  # a row the paper does not have (Table IV "inside full WMMT") stands alone
            out_rows.append(("", "paper (LAV-DF)", paper[row.label]))
    note = ("Rows of the same variant share one trained model. Scored heads and ground truth: "
            + "; ".join(f"{r.label}: {r.head} head vs {GROUND_TRUTH_COLUMNS[r.ground_truth]}" for r in rows) + ".")
    return f"## {title}\n\n{markdown_table(out_rows)}\n{note}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.tables", description="Regenerate a paper table.")
    parser.add_argument("--table", required=True, choices=sorted(PAPER_TABLES))
    parser.add_argument("--predictions", nargs="+", required=True,
                        help="the rows' prediction files, <variant>/test/predictions[_<head>].json")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--dataset", required=True, help="dataset name, for the table's labels")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from wmmt.manifest import load_manifest

    try:
        text = ablation_table(args.table, args.predictions, load_manifest(args.manifest), args.dataset)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
