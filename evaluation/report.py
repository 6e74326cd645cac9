"""The evaluation report of one dataset: Markdown (and an HTML table page for `snakemake --report`).

    python -m evaluation.report --config results/effective_config.yaml --dataset D --manifest M \
        --issues I --features-summary SUMMARY --metrics M --predictions P --outputs O --model PT \
        --data results/D/report_data.json \
        [--model-card --reference --tables --seed-study --cross TRAIN TEST METRICS] \
        --out results/D/report.md --timelines PNG --deviation PNG --tsne PNG --html HTML

Reads the files it is given, and only those (the workflow's rule ``report`` passes its
declared inputs: metrics, predictions, model card, feature summary, manifest issues,
ablation tables, seed study, cross-dataset metrics, and ``report_data.json``, where
evaluation.report_data computed the floor, Fig. 3 and Fig. 4 once for this report and
report.html), runs no model, and writes the report with:
  * the Table I layout (our mAP per IoU, average, AR per N, average) beside the paper's
    numbers for a dataset of the same format: WMMT, the fully supervised reference on the
    same features, a whole-video floor, the ratio WMMT / fully supervised, the subsets
    (evaluation.tables.main_results_table), and beside it the dataset's own protocol (LAV-DF's or
    AV-Deepfake1M's thresholds and subsets, evaluation.protocols) for WMMT and the reference;
  * where the features came from, when they were imported from per-video .npy files (the feature
    summary's ``source``; without one they were extracted here);
  * four-class accuracy, confusion matrix and video-level AUCs;
  * FAS timelines of a few test videos against the ground truth (figure);
  * temporal deviation of genuine vs forged videos per track, on the train-standardised
    features and on the trained model's enhanced features (Fig. 3), and t-SNE of the
    video-level representations before (the extracted features) and after enhancement (Fig. 4);
  * the ablation tables (IV-VII) and the cross-dataset table (III);
  * the videos that could not be decoded, the manifest's issues;
  * the identity of the extractors and of the model (checkpoints, random weights or not).
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.paper_numbers import CROSS_DATASET, INTRA_DATASET
from evaluation.protocols import protocol_table
from evaluation.report_data import (  # noqa: F401 (Fig. 3's measurement, computed by report_data, shown here)
    DEVIATION_SOURCES,
    DEVIATION_TRACKS,
    adjacent_deviation,
    deviation_ratios,
    forged_tracks,
    read_report_data,
    temporal_deviation,
)
from evaluation.tables import main_results_table, markdown_table, metrics_row
from model.prediction_files import read_outputs, read_predictions
from wmmt.io import atomic_path, read_json, write_text
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, PAPER_AP_IOUS, PAPER_AR_NS, REAL, VISUAL_ONLY_FAKE
from wmmt.vocab import CLASS_SHORT_NAMES as CLASS_NAMES

log = logging.getLogger("wmmt.report")



def _load_json(path):
    return read_json(path, "JSON")


def _savefig(fig, path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timelines(outputs: dict, manifest, predictions: dict, n: int, path) -> list[str]:
    """FAS of the chosen expert for up to ``n`` test videos (one of each forgery type first)."""
    plt = _plt()
    test = manifest[manifest["split"] == "test"].set_index("video_id")
    have = [v for v in outputs["video_ids"] if v in test.index]
    chosen: list[str] = []
    for label in (BOTH_FAKE, VISUAL_ONLY_FAKE, AUDIO_ONLY_FAKE, REAL):
        for vid in have:
            if test.loc[vid, "label"] == label and vid not in chosen:
                chosen.append(vid)
                break
    chosen += [v for v in have if v not in chosen]
    chosen = chosen[:max(n, 1)]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 1.9 * len(chosen)), squeeze=False)
    for ax, vid in zip(axes[:, 0], chosen):
        video = outputs["videos"][vid]
        t = np.arange(len(video["score_expert"])) / video["fps"]
        for start, end in test.loc[vid, "fake_periods"]:
            ax.axvspan(start, end, color="red", alpha=0.25, lw=0)
        for _, start, end in predictions.get(vid, [])[:5]:
            ax.axvspan(start, end, ymin=0.9, ymax=1.0, color="blue", alpha=0.6, lw=0)
        ax.plot(t, video["score_expert"], "k-", lw=1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("fake", fontsize=8)
        ax.set_title(f"{vid}: truth {CLASS_NAMES[int(test.loc[vid, 'label'])]}, "
                     f"predicted {CLASS_NAMES[video['video_class']]}", fontsize=9)
    axes[-1, 0].set_xlabel("time (s): red = forged (ground truth), blue = top-5 predicted segments")
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return chosen


def plot_deviation(deviation: dict, path) -> None:
    """Box plots of genuine vs forged temporal deviation: one row per source, one column per track."""
    plt = _plt()
    sources = list(deviation)
    fig = plt.figure(figsize=(10, 3.2 * len(sources)), layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(sources), 1))
    ratios = deviation_ratios(deviation)
    for subfig, source in zip(rows, sources):
        subfig.suptitle(DEVIATION_SOURCES.get(source, source), fontsize=10, fontweight="bold")
        for ax, track in zip(subfig.subplots(1, 3), DEVIATION_TRACKS):
            groups = deviation[source][track]
            data = [groups["genuine"] or [np.nan], groups["forged"] or [np.nan]]
            ax.boxplot(data, tick_labels=[f"genuine\n({len(groups['genuine'])})", f"forged\n({len(groups['forged'])})"],
                       showfliers=False)
            ax.set_title(f"{track}: forged / genuine {ratios[source][track]:.2f}", fontsize=9)
            ax.set_ylabel("mean adjacent-frame MSE", fontsize=8)
    _savefig(fig, path)
    plt.close(fig)


def deviation_markdown(deviation: dict, path) -> str:
    """The report's "Temporal deviation" section: the figure at ``path`` and the ratios as text."""
    plot_deviation(deviation, path)
    ratios = deviation_ratios(deviation)
    lines = ["## Temporal deviation (cf. Fig. 3)", "", f"![temporal deviation](figures/{Path(path).name})", "",
             "Per test video, the temporal deviation d of Eq. 11-12: the MSE of adjacent frames' features, "
             "averaged over the T-1 pairs (a sum would grow with the video's length). A track counts as forged "
             "when that track was edited (multimodal: any forgery, Eq. 14). Median forged / median genuine:", "",
             "| features | " + " | ".join(DEVIATION_TRACKS) + " |", "|---|" + "---|" * len(DEVIATION_TRACKS)]
    for source, by_track in ratios.items():
        cells = [f"{by_track[m]:.2f} ({len(deviation[source][m]['forged'])} / "
                 f"{len(deviation[source][m]['genuine'])})" for m in DEVIATION_TRACKS]
        lines.append(f"| {DEVIATION_SOURCES.get(source, source)} | " + " | ".join(cells) + " |")
    lines += ["", "(counts: forged / genuine videos). The paper measures forged > genuine (ratio > 1) on all "
              "three tracks; the deviation perceiving loss relies on it.", ""]
    return "\n".join(lines)


def deviation_section(cache, manifest, model, stats, path, limit: int = 0) -> str:
    """``temporal_deviation`` of the test split, rendered by ``deviation_markdown``."""
    return deviation_markdown(temporal_deviation(cache, manifest, stats, model=model, split="test", limit=limit),
                              path)


TSNE_STAGES = {"before": "pre-trained (extracted)", "after": "WMMT-enhanced"}


def plot_tsne(tsne: dict, path) -> str:
    """Fig. 4 from report_data's t-SNE points (before and after enhancement); a note where it has none."""
    plt = _plt()
    panels = tsne["panels"]
    if not panels:
        fig = plt.figure(figsize=(4, 1))  # keep the declared output even when t-SNE could not run
        fig.text(0.5, 0.5, tsne["note"], ha="center", fontsize=7)
    else:
        stages = [s for s in ("before", "after") if panels[0][s] is not None]  # no cache: "after" only
        fig, axes = plt.subplots(len(stages), len(panels), figsize=(3.3 * len(panels), 3.2 * len(stages)),
                                 squeeze=False)
        for col, panel in enumerate(panels):
            colour = np.asarray(panel["colour"])
            for row, stage in enumerate(stages):
                xy, ax = np.asarray(panel[stage]), axes[row, col]
                for c in np.unique(colour):
                    sel = colour == c
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=8, label=panel["names"][c])
                ax.set_title(f"{panel['name']}, {TSNE_STAGES[stage]}", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.legend(fontsize=6)
        fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return tsne["note"]


def confusion_markdown(confusion) -> str:
    head = "| true \\ predicted | " + " | ".join(CLASS_NAMES) + " |\n|---|" + "---|" * 4 + "\n"
    return head + "".join(
        f"| {CLASS_NAMES[i]} | " + " | ".join(str(int(v)) for v in row) + " |\n" for i, row in enumerate(confusion)
    )


def features_source(summary: dict) -> str | None:
    """One line saying where the features came from, when the feature summary records a ``source``
    (features imported from per-video .npy files, extractors.npy_features); None when it has none,
    i.e. the features were extracted from the videos by the project's extractors."""
    source = summary.get("source")
    if not source:
        return None
    if not isinstance(source, dict):
        raise ValueError(f"features summary: 'source' must be a mapping, got {source!r}")
    if source.get("kind") != "npy":
        return f"Features from an outside source, not extracted here: `{json.dumps(source, sort_keys=True)}`."
    rate = source.get("audio_rate")
    timing = ("each video's audio rows spread evenly over its span" if rate == "span"
              else f"audio rows at {rate:g} Hz" if isinstance(rate, (int, float)) else f"audio rate {rate!r}")
    fps = source.get("fps")
    pooled = f"pooled onto the visual rows at {fps:g} fps" if isinstance(fps, (int, float)) else "pooled by time"
    return (f"Features imported from per-video .npy files (python -m extractors.npy_features): visual "
            f"`{source.get('visual')}`, audio `{source.get('audio')}` ({timing}, {pooled}); no extractor ran.")


def protocols_markdown(metrics: dict, reference: dict | None) -> str:
    """The dataset's own evaluation protocol (LAV-DF's or AV-Deepfake1M's, ``metrics.json``'s
    ``protocols``) for WMMT and the fully supervised reference; empty when the metrics hold none."""
    parts = []
    for name, entry in (("WMMT (ours, weakly supervised)", metrics), ("Fully supervised reference (ours)", reference)):
        table = protocol_table(entry) if entry is not None else ""
        if table:
            parts += [f"### {name}", "", table]
    if not parts:
        return ""
    return "\n".join(["## The dataset's own protocol", "",
                      "Beside the paper's layout: the thresholds and subsets the dataset's own evaluator uses "
                      "(evaluation.protocols, docs/decisions/evaluation.md), the same predictions.", "", *parts])


def _identity_section(summary: dict, ckpt_info: dict) -> str:
    ext = summary.get("extractor", {})
    lines = ["## Extractors and model", ""]
    random_parts = [k for k, v in (ext.get("random_weights") or {}).items() if v]
    if random_parts:
        lines.append(f"> **WARNING: the {', '.join(random_parts)} extractor(s) ran with RANDOM weights** "
                     "(no pretrained checkpoint was given, or a random-weight checkpoint was). "
                     "These numbers say nothing about the method's accuracy on real data.")
        lines.append("")
    lines.append("```json")
    identity = {"extractor": ext, "model": ckpt_info}
    if summary.get("source"):
        identity["source"] = summary["source"]
    lines.append(json.dumps(identity, indent=2, sort_keys=True, default=str))
    lines.append("```")
    return "\n".join(lines) + "\n"


def _failures_section(summary: dict, issues: dict) -> str:
    failures = summary.get("failures", [])
    lines = ["## Extraction failures and dataset issues", ""]
    if failures:
        lines.append(f"{len(failures)} video(s) could not be decoded; they have no features, get no "
                     "proposals, and their forged segments count as missed:")
        lines.append("")
        lines += [f"- `{f.get('video_id')}` ({f.get('path', '')}): {f.get('reason')}" for f in failures[:200]]
        if len(failures) > 200:
            lines.append(f"- ... and {len(failures) - 200} more (see the shards' failures.json)")
    else:
        lines.append("Every video of the manifest was decoded.")
    lines.append("")
    lines.append("Manifest issues (records without a file, files without a record):")
    lines.append("")
    lines.append("```json")
    lines.append(json.dumps(issues, indent=2, sort_keys=True)[:4000])
    lines.append("```")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReportFiles:
    """What a report reads (rule report's declared inputs; metrics, predictions, outputs and model are
    the full model's; ``data`` is evaluation.report_data's file) and writes (its declared outputs)."""

    manifest: Path
    issues: Path
    features_summary: Path
    metrics: Path
    predictions: Path
    outputs: Path
    model: Path
    data: Path
    out: Path
    timelines: Path
    deviation: Path
    tsne: Path
    html: Path
    model_card: Path | None = None
    reference: Path | None = None  # the fully supervised reference's test metrics (yardsticks or ablations)
    baseline: Path | None = None  # the concatenation baseline's test metrics (yardsticks or ablations)
    tables: tuple[Path, ...] = ()  # the ablation tables, in the order they are shown
    seed_study: Path | None = None
    cross: tuple[tuple[str, str, Path], ...] = ()  # (train dataset, test dataset, metrics.json)


def _model_info(model: Path, card: Path | None) -> dict:
    info = {"checkpoint": str(model)}
    if card is not None:
        info.update(_load_json(card))
    return info


def _link(path: Path, files: ReportFiles) -> str:
    """``path`` as the report links it: relative to the report's folder."""
    return Path(os.path.relpath(path, files.out.parent)).as_posix()


def _figures(config: dict, files: ReportFiles, manifest, outputs: dict, predictions: dict, data: dict) -> list[str]:
    """The FAS timelines, temporal deviation (Fig. 3) and t-SNE (Fig. 4) sections, figures written."""
    chosen = plot_timelines(outputs, manifest, predictions, config.get("report", {}).get("timelines", 4),
                            files.timelines)
    parts = ["## FAS timelines", "",
             f"![FAS timelines]({_link(files.timelines, files)})\n\nVideos: {', '.join(f'`{v}`' for v in chosen)}.",
             ""]
    if data["deviation"] is None:
        raise ValueError(f"{files.data}: holds no temporal deviation (made without the model and features)")
    parts.append(deviation_markdown(data["deviation"], files.deviation))
    tsne_note = plot_tsne(data["tsne"], files.tsne)
    parts.append(f"## t-SNE before and after enhancement (cf. Fig. 4)\n\n![t-SNE]({_link(files.tsne, files)})"
                 f"\n\n{tsne_note}\n")
    return parts


def _ablation_sections(files: ReportFiles) -> tuple[list[str], list]:
    """The ablation tables, the seed study and the cross-dataset table (Markdown parts, cross rows)."""
    parts = []
    if files.tables:
        parts.append("# Ablations (Tables IV-VII), each variant trained on this dataset\n")
        parts += ["#" + Path(path).read_text(encoding="utf-8") for path in files.tables]
    if files.seed_study is not None:
        parts.append("## Variants over several training seeds (python -m evaluation.seed_study)\n\n"
                     + files.seed_study.read_text(encoding="utf-8"))
    cross_rows = [(f"{train} -> {test}", "ours", metrics_row(_load_json(path))) for train, test, path in files.cross]
    if cross_rows:
        cross_rows.append(("AV-Deepfake1M -> LAV-DF", f"paper, {CROSS_DATASET[0]}", CROSS_DATASET[1]))
        parts.append("## Cross-dataset (layout of Table III)\n")
        parts.append(markdown_table(cross_rows))
    return parts, cross_rows


def build_report(config: dict, dataset: str, files: ReportFiles) -> str:
    from wmmt.manifest import load_manifest

    fmt = config["datasets"][dataset]["format"]
    manifest = load_manifest(files.manifest)
    metrics = _load_json(files.metrics)
    summary = _load_json(files.features_summary)
    data = read_report_data(files.data)

    paper_title = INTRA_DATASET[fmt][0]
    parts = [f"# WMMT evaluation report: dataset `{dataset}`", ""]
    random_parts = [k for k, v in (summary.get("extractor", {}).get("random_weights") or {}).items() if v]
    if random_parts:
        parts += [f"> **The {' and '.join(random_parts)} features come from RANDOM-weight extractors**: the numbers "
                  "below test the pipeline, not the method (see the identity section at the end).", ""]
    source = features_source(summary)
    if source:
        parts += [source, ""]
    parts += [f"Test split: {metrics.get('num_videos', '?')} videos. Full WMMT (variant `full`), forged segments "
              "from modality-aware expert selection.", "",
              f"## Temporal forgery localization (layout of the paper's {paper_title.split(' (')[0]})", ""]
    # The fully supervised reference and the concatenation baseline: the config's yardsticks (or ablations).
    reference = _load_json(files.reference) if files.reference is not None else None
    baseline = _load_json(files.baseline) if files.baseline is not None else None
    main_table, rows = main_results_table(dataset, fmt, metrics, reference, data["floor"],
                                          reference_note="not built (yardsticks: false)", baseline=baseline,
                                          intervals=data.get("intervals"))
    parts += [main_table, "AR is averaged over IoU 0.5:0.05:0.95; AP and AR follow the LAV-DF / AV-Deepfake1M "
              "evaluators (docs/decisions/evaluation.md). Subsets: the real videos plus one forgery type.", ""]
    protocols = protocols_markdown(metrics, reference)
    if protocols:
        parts += [protocols, ""]
    cls = metrics.get("classification")
    if cls:
        parts += ["## Forgery type (four classes)", "", f"Accuracy: {100 * cls['accuracy']:.2f}%. Video-level AUC: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in sorted(cls.get("auc", {}).items())), "",
                  confusion_markdown(cls["confusion"])]
    parts += _figures(config, files, manifest, read_outputs(files.outputs), read_predictions(files.predictions), data)
    ablation_parts, cross_rows = _ablation_sections(files)
    parts += ablation_parts
    parts.append(_failures_section(summary, _load_json(files.issues)))
    parts.append(_identity_section(summary, _model_info(files.model, files.model_card)))
    text = "\n".join(parts)
    write_text(files.out, text)
    _html_tables(rows, cls, cross_rows, files.html, dataset)
    return text


def _html_tables(rows, cls, cross_rows, path, dataset: str) -> None:
    def table(rows_):
        head = (["", "source"] + [f"mAP@{t}" for t in PAPER_AP_IOUS] + ["avg"]
                + [f"AR@{n}" for n in PAPER_AR_NS] + ["avg"])
        out = ["<table border=1 cellspacing=0 cellpadding=3><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
        for label, source, (ap, ar) in rows_:
            cells = [*ap, float(np.mean(ap)), *ar, float(np.mean(ar))]
            out.append(f"<tr><td>{html.escape(label)}</td><td>{html.escape(source)}</td>"
                       + "".join(f"<td>{v:.2f}</td>" for v in cells) + "</tr>")
        return "\n".join([*out, "</table>"])

    body = [f"<h2>WMMT on {html.escape(dataset)}</h2>", table(rows)]
    if cls:
        body.append(f"<h3>Four-class accuracy {100 * cls['accuracy']:.2f}%</h3><table border=1><tr><th></th>"
                    + "".join(f"<th>{c}</th>" for c in CLASS_NAMES) + "</tr>"
                    + "".join(f"<tr><th>{CLASS_NAMES[i]}</th>" + "".join(f"<td>{int(v)}</td>" for v in r) + "</tr>"
                              for i, r in enumerate(cls["confusion"])) + "</table>")
    if cross_rows:
        body += ["<h3>Cross-dataset</h3>", table(cross_rows)]
    write_text(path, "<html><body>\n" + "\n".join(body) + "\n</body></html>\n")


# (flag, help) of the files the report reads and writes; the optional ones may be left out.
_READ = (("manifest", "manifest.jsonl"), ("issues", "the manifest's manifest_issues.json"),
         ("features-summary", "the feature cache's summary.json"),
         ("metrics", "the full model's test metrics.json"), ("predictions", "its test predictions.json"),
         ("outputs", "its test outputs.npz"), ("model", "its model.pt (named in the identity section)"),
         ("data", "report_data.json of python -m evaluation.report_data (floor, Fig. 3, Fig. 4)"))
_WRITTEN = (("out", "report.md"), ("timelines", "FAS timelines (PNG)"), ("deviation", "temporal deviation (PNG)"),
            ("tsne", "t-SNE (PNG)"), ("html", "the HTML tables page"))
_OPTIONAL = (("model-card", "the full model's model_card.json"),
             ("reference", "test metrics.json of the fully supervised reference"),
             ("baseline", "test metrics.json of the concatenation baseline"),
             ("seed-study", "the seed study's Markdown table"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.report", description="Write a dataset's report.")
    parser.add_argument("--config", required=True, help="the workflow's effective config")
    parser.add_argument("--dataset", required=True)
    for flag, what in _READ + _WRITTEN:
        parser.add_argument(f"--{flag}", required=True, help=what)
    for flag, what in _OPTIONAL:
        parser.add_argument(f"--{flag}", help=what)
    parser.add_argument("--tables", nargs="*", default=[], help="ablation tables (Markdown), shown in this order")
    parser.add_argument("--cross", nargs=3, action="append", default=[], metavar=("TRAIN", "TEST", "METRICS"),
                        help="cross-dataset metrics.json of a model trained on TRAIN, tested on TEST (repeatable)")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from wmmt.config import ConfigError, load_config

    paths = {k: Path(v) for k, v in vars(args).items() if k not in ("config", "dataset", "tables", "cross") and v}
    files = ReportFiles(**paths, tables=tuple(Path(p) for p in args.tables),
                        cross=tuple((train, test, Path(m)) for train, test, m in args.cross))
    try:
        config = load_config(args.config)
        build_report(config, args.dataset, files)
    except (ConfigError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
