"""The page of one dataset: the report's tables and figures (interactive) and every test video.

Everything is read from the files the Markdown report reads: the floor, Fig. 3 and Fig. 4 from
the report's computed file (evaluation.report_data), the Table I layout by the report's own
evaluation.tables.main_results_table, so the page and report.md agree and nothing is computed twice.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import evaluation.viewer.figures as F
from evaluation.paper_numbers import CROSS_DATASET, INTRA_DATASET
from evaluation.viewer.page import Figures, markdown_to_html, page_data, videos_section, write_page
from evaluation.viewer.videos import ERROR_KINDS, place_videos, video_records
from model.prediction_files import read_classes, read_outputs, read_predictions
from wmmt.io import read_json

log = logging.getLogger("wmmt.viewer")


@dataclass
class DatasetInputs:
    """The files a dataset's page reads (the workflow passes its declared inputs)."""

    manifest: Path
    metrics: Path
    predictions: Path
    classes: Path
    outputs: Path
    head_predictions: dict[str, Path] = field(default_factory=dict)  # head -> predictions_<head>.json
    report_data: Path | None = None  # evaluation.report_data's file: the floor, Fig. 3 and Fig. 4
    reference: Path | None = None  # metrics.json of the fully supervised reference
    baseline: Path | None = None  # metrics.json of the concatenation baseline
    summary: Path | None = None  # features/summary.json: random-weight extractors are flagged
    tables: list[Path] = field(default_factory=list)  # ablation tables (Markdown, evaluation.tables)
    seed_study: Path | None = None
    cross: list[tuple[str, Path]] = field(default_factory=list)  # ("train -> test", its metrics.json)
    train_logs: dict[str, Path] = field(default_factory=dict)  # run name -> train_log.csv


def _load_json(path):
    return read_json(path, "JSON")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def results_section(config, dataset, metrics, inputs: DatasetInputs, data: dict | None, figs: Figures) -> str:
    from evaluation.report import protocols_markdown
    from evaluation.tables import main_results_table

    fmt = config["datasets"][dataset]["format"]
    reference = _load_json(inputs.reference) if inputs.reference else None
    baseline = _load_json(inputs.baseline) if inputs.baseline else None
    floor = data["floor"] if data else None
    # As report.md: the workflow passes the reference whenever the config builds it (yardsticks or ablations).
    text, rows = main_results_table(dataset, fmt, metrics, reference, floor,
                                    reference_note="not built (yardsticks: false)", baseline=baseline,
                                    intervals=data.get("intervals") if data else None)
    protocols = protocols_markdown(metrics, reference)  # the dataset's own protocol, as report.md shows it
    return (f"<p>Layout of the paper's {html.escape(INTRA_DATASET[fmt][0])}; test split: "
            f"{metrics.get('num_videos', '?')} videos.</p>" + markdown_to_html(text)
            + figs.html(F.table_figure(rows)) + (markdown_to_html(protocols, level_offset=1) if protocols else ""))


def classification_section(metrics, figs: Figures) -> str | None:
    cls = metrics.get("classification")
    if not cls:
        return None
    aucs = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in sorted(cls.get("auc", {}).items()))
    accuracy = "n/a" if cls.get("accuracy") is None else f"{100 * cls['accuracy']:.2f}%"
    return f"<p>Four-class accuracy: {accuracy}. Video-level AUC: {html.escape(aucs)}.</p>" + \
        figs.html(F.confusion_figure(cls["confusion"]))


def training_section(train_logs: dict, figs: Figures) -> str:
    logs, missing = {}, []
    for run, path in train_logs.items():
        if Path(path).is_file():
            logs[run] = F.read_train_log(path)
        else:
            missing.append(f"{run} ({path})")
    out = _note("No train_log.csv was given.") if not logs else figs.html(F.training_figure(logs))
    if logs and len(logs) > 1:
        out += _note("Click a run in the legend to show it; runs other than full start hidden.")
    if missing:
        out += _note("Not found: " + ", ".join(missing) + ".")
    return out


def deviation_section(data: dict | None, figs: Figures) -> str:
    """Fig. 3 from the report's computed deviations, or why it is not shown."""
    if not data or data.get("deviation") is None:
        return _note("Not shown: no report data with the temporal deviation was given (--report-data).")
    return deviation_html(data["deviation"], figs)


def deviation_html(deviation: dict, figs: Figures) -> str:
    """Fig. 3 as plotly box plots of evaluation.report_data's deviations (train-split statistics from the
    checkpoint, the trained model's features), with the same ratios as report.md."""
    from evaluation import report_data as R

    fig = F.deviation_figure(deviation, R.deviation_ratios(deviation), R.DEVIATION_SOURCES, R.DEVIATION_TRACKS)
    return figs.html(fig) + _note(
        "Per test video, the mean squared difference of adjacent frames' features (Eq. 11-12, averaged over "
        "the T-1 pairs); a track counts as forged when it was edited (multimodal: any forgery). The paper "
        "measures forged > genuine on all three tracks.")


def tsne_section(data: dict | None, figs: Figures) -> str:
    if not data:
        return _note("Not shown: no report data was given (--report-data).")
    fig = F.tsne_figure(data["tsne"])
    return (figs.html(fig) if fig is not None else "") + _note(data["tsne"]["note"])


def tables_section(inputs: DatasetInputs) -> str | None:
    parts = []
    for path in inputs.tables:
        path = Path(path)
        parts.append(markdown_to_html(path.read_text(encoding="utf-8"), level_offset=1) if path.is_file()
                     else _note(f"{path.stem} not built ({path})."))
    if inputs.seed_study is not None:
        path = Path(inputs.seed_study)
        parts.append("<h3>Variants over several training seeds</h3>" + (
            markdown_to_html(path.read_text(encoding="utf-8")) if path.is_file() else _note(f"not built ({path})")))
    return "\n".join(parts) or None


def cross_section(inputs: DatasetInputs) -> str | None:
    from evaluation.tables import markdown_table, metrics_row

    rows = []
    for label, path in inputs.cross:
        rows.append((label, "ours", metrics_row(_load_json(path))))
    if not rows:
        return None
    rows.append(("AV-Deepfake1M -> LAV-DF", f"paper, {CROSS_DATASET[0]}", CROSS_DATASET[1]))
    return markdown_to_html(markdown_table(rows))


def _videos_note(records: list[dict], counts: dict) -> str:
    kinds = Counter(r["error"] for r in records)
    summary = ", ".join(f"{kinds[k]} {k}" for k in ERROR_KINDS if kinds[k])
    return _note(
        f"{len(records)} test videos: {summary}. Clips: {counts['copied']} copied beside the page into "
        f"{counts['folder']}/ ({counts['copied_mb']} MB of the {counts['limit_mb']:g} MB bound, failures first), "
        f"{counts['linked']} linked to their place on disk by a relative path, {counts['missing']} not found. "
        "The list starts with the failures; click a column to sort, a row to show the video.")


def _features_notes(inputs: DatasetInputs) -> str:
    """Where the features came from (imported .npy files), and a warning for random-weight extractors."""
    from evaluation.report import features_source

    if inputs.summary is None or not Path(inputs.summary).is_file():
        return ""
    summary = _load_json(inputs.summary)
    source = features_source(summary)
    out = markdown_to_html(source) if source else ""
    random_parts = [k for k, v in (summary.get("extractor", {}).get("random_weights") or {}).items() if v]
    if random_parts:
        out += (f'<div class="warning"><b>The {html.escape(" and ".join(random_parts))} features come from '
                "RANDOM-weight extractors</b>: the numbers test the pipeline, not the method.</div>")
    return out


def build_dataset_page(config: dict, dataset: str, inputs: DatasetInputs, out, copy_mb: float) -> Path:
    """Write the page of ``dataset`` to ``out`` (clips beside it, see videos.place_videos)."""
    from evaluation.report_data import read_report_data
    from wmmt.manifest import load_manifest

    if dataset not in config.get("datasets", {}):
        raise ValueError(f"config: no dataset {dataset!r} (has {sorted(config.get('datasets', {}))})")
    out = Path(out)
    manifest = load_manifest(inputs.manifest)
    metrics = _load_json(inputs.metrics)
    outputs = read_outputs(inputs.outputs)
    classes = read_classes(inputs.classes)
    data = read_report_data(inputs.report_data) if inputs.report_data else None
    figs = Figures()
    sections = [("results", "Temporal forgery localization",
                 _features_notes(inputs) + results_section(config, dataset, metrics, inputs, data, figs))]
    optional = [("classification", "Forgery type (four classes)", classification_section(metrics, figs)),
                ("training", "Training curves", training_section(inputs.train_logs, figs)),
                ("deviation", "Temporal deviation (cf. Fig. 3)", deviation_section(data, figs)),
                ("tsne", "t-SNE before and after enhancement (cf. Fig. 4)", tsne_section(data, figs)),
                ("ablations", "Ablations (Tables IV-VII)", tables_section(inputs)),
                ("cross", "Cross-dataset (layout of Table III)", cross_section(inputs))]
    sections += [s for s in optional if s[2] is not None]
    heads = {h: read_predictions(p) for h, p in inputs.head_predictions.items() if Path(p).is_file()}
    records = video_records(manifest, outputs, classes, read_predictions(inputs.predictions), heads)
    counts = place_videos(records, out, copy_mb)
    sections.append(("videos", "Test videos", _videos_note(records, counts) + videos_section()))
    data = page_data(records, single=False, extra={"dataset": dataset, "clips": counts})
    write_page(out, f"WMMT evaluation: dataset {dataset}", sections, data, figs)
    log.info("%s: %d videos (%d clips copied, %d linked, %d missing)", out, len(records),
             counts["copied"], counts["linked"], counts["missing"])
    return out
