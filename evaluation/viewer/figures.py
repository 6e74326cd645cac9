"""The viewer's plotly figures, built from what the report computes (evaluation.report_data,
evaluation.tables): the Table I rows, the confusion matrix, training curves, Fig. 3 and
Fig. 4, and the template of the per-video FAS plot that the page fills for each video."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from wmmt.vocab import CLASS_SHORT_NAMES, PAPER_AP_IOUS, PAPER_AR_NS

LOSSES = ("loss", "loss_m", "loss_v", "loss_a", "loss_dp")
DEV_METRICS = ("dev_acc", "dev_auc", "dev_ap", "dev_loss")
HEAD_STYLE = {"visual": dict(color="#1f77b4", dash="dot", width=1.2),
              "audio": dict(color="#2ca02c", dash="dash", width=1.2),
              "multimodal": dict(color="#9467bd", dash="dashdot", width=1.2),
              "expert": dict(color="black", width=2.4)}


def _go():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


def table_figure(rows) -> object:
    """mAP per IoU and AR per N of the main table's rows (label, source, (ap, ar)), ours and the paper's."""
    go, make_subplots = _go()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mAP (%) by IoU threshold", "AR (%) by number of proposals"))
    for label, source, (ap, ar) in rows:
        name = f"{label} [{source}]"
        dash = "dash" if source.startswith("paper") else "solid"
        common = dict(name=name, legendgroup=name, mode="lines+markers", line=dict(dash=dash))
        fig.add_trace(go.Scatter(x=list(PAPER_AP_IOUS), y=list(ap), **common), 1, 1)
        fig.add_trace(go.Scatter(x=[str(n) for n in PAPER_AR_NS], y=list(ar), showlegend=False, **common), 1, 2)
    fig.update_xaxes(title_text="IoU", row=1, col=1)
    fig.update_xaxes(title_text="N", row=1, col=2)
    fig.update_layout(height=420, margin=dict(t=40, b=40), legend=dict(font=dict(size=10)))
    return fig


def confusion_figure(confusion) -> object:
    go, _ = _go()
    z = np.asarray(confusion, dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=list(CLASS_SHORT_NAMES), y=list(CLASS_SHORT_NAMES), colorscale="Blues",
                               text=z.astype(int), texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(height=360, width=480, margin=dict(t=30, b=40),
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return fig


def read_train_log(path) -> list[dict]:
    """train_log.csv, or a run's model_card.json (its ``log``: the same rows), -> rows of floats
    (blank cells dropped)."""
    if str(path).endswith(".json"):
        log = json.loads(Path(path).read_text(encoding="utf-8")).get("log")
        if not isinstance(log, list):
            raise ValueError(f"{path}: a model card without its training log ('log')")
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in log]
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "step" not in (reader.fieldnames or ()):
            raise ValueError(f"{path}: not a train_log.csv (no 'step' column)")
        rows = []
        for n, row in enumerate(reader, start=2):
            try:
                rows.append({k: float(v) for k, v in row.items() if k and v not in ("", None)})
            except ValueError as exc:
                raise ValueError(f"{path}: line {n}: {exc}") from None
    return rows


def training_figure(logs: dict[str, list[dict]]) -> object:
    """Losses (top) and dev metrics (bottom) by step, every run; runs other than ``full`` start hidden."""
    go, make_subplots = _go()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("training losses", "dev-split metrics (model selection)"))
    for run, rows in logs.items():
        visible = True if run == "full" or len(logs) == 1 else "legendonly"
        for row_no, keys in ((1, LOSSES), (2, DEV_METRICS)):
            for key in keys:
                pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
                if pts:
                    x, y = zip(*pts)
                    fig.add_trace(go.Scatter(x=x, y=y, name=f"{run}: {key}", legendgroup=run, visible=visible,
                                             mode="lines+markers" if row_no == 2 else "lines"), row_no, 1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(height=560, margin=dict(t=40, b=40), legend=dict(font=dict(size=9)))
    return fig


def deviation_figure(deviation: dict, ratios: dict, sources: dict, tracks) -> object:
    """Fig. 3: genuine vs forged temporal deviation, one row per feature source, one column per track."""
    go, make_subplots = _go()
    names = list(deviation)
    titles = [f"{sources.get(s, s)}<br>{t}: forged / genuine {ratios[s][t]:.2f}" for s in names for t in tracks]
    fig = make_subplots(rows=len(names), cols=len(tracks), subplot_titles=titles, vertical_spacing=0.18)
    for r, source in enumerate(names, start=1):
        for c, track in enumerate(tracks, start=1):
            for group, colour in (("genuine", "#1f77b4"), ("forged", "#d62728")):
                values = deviation[source][track][group]
                fig.add_trace(go.Box(y=values, name=f"{group} ({len(values)})", marker_color=colour,
                                     boxpoints="all", jitter=0.4, pointpos=0, showlegend=False), r, c)
            fig.update_yaxes(title_text="mean adjacent-frame MSE" if c == 1 else None, row=r, col=c)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=330 * len(names), margin=dict(t=60, b=30))
    return fig


def tsne_figure(tsne: dict):
    """Fig. 4 from evaluation.report_data's t-SNE points (the ones report.md plots); None without panels."""
    if not tsne["panels"]:
        return None
    go, make_subplots = _go()
    panels, ids = tsne["panels"], tsne["videos"]
    stages = [s for s in ("before", "after") if panels[0][s] is not None]  # no feature cache: "after" only
    titles = {"before": "pre-trained (extracted)", "after": "WMMT-enhanced"}
    fig = make_subplots(rows=len(stages), cols=len(panels), subplot_titles=[
        f"{p['name']}, {titles[stage]}" for stage in stages for p in panels])
    seen = set()
    for col, panel in enumerate(panels, start=1):
        colour = np.asarray(panel["colour"])
        for row, stage in enumerate(stages, start=1):
            xy = np.asarray(panel[stage])
            for c in np.unique(colour):
                sel = colour == c
                label = f"{panel['name']}: {panel['names'][c]}"
                fig.add_trace(go.Scatter(x=xy[sel, 0], y=xy[sel, 1], mode="markers", name=label,
                                         legendgroup=label, showlegend=label not in seen, marker=dict(size=6),
                                         text=[ids[i] for i in np.flatnonzero(sel)],
                                         hovertemplate="%{text}<extra></extra>"), row, col)
                seen.add(label)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=310 * len(stages), margin=dict(t=40, b=20))
    return fig


def fas_template() -> tuple[object, dict]:
    """The per-video FAS figure without data, and the styles of its bands and cursor. The page's
    script fills x / y of each trace and sets the bands (truth, predicted) and the cursor as shapes."""
    go, _ = _go()
    fig = go.Figure()
    for head in ("visual", "audio", "multimodal", "expert"):
        name = "chosen expert" if head == "expert" else f"{head} head"
        fig.add_trace(go.Scatter(x=[], y=[], name=name, mode="lines", line=HEAD_STYLE[head],
                                 hovertemplate="%{x:.2f} s: %{y:.3f}<extra>" + name + "</extra>"))
    fig.update_layout(height=300, margin=dict(t=20, b=40, l=50, r=10), xaxis_title="time (s)",
                      yaxis=dict(title="fake score (FAS)", range=[-0.02, 1.02]), hovermode="x unified",
                      legend=dict(orientation="h", y=1.12, font=dict(size=10)), clickmode="event")
    styles = {
        "truth": dict(type="rect", xref="x", yref="paper", y0=0, y1=1, fillcolor="rgba(214,39,40,0.18)",
                      line=dict(width=0), layer="below"),
        "pred": dict(type="rect", xref="x", yref="paper", y0=0.93, y1=1.0, fillcolor="rgba(31,119,180,0.75)",
                     line=dict(width=0)),
        "threshold": dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=0.5, y1=0.5,
                          line=dict(color="grey", width=0.6, dash="dot")),
        "cursor": dict(type="line", xref="x", yref="paper", y0=0, y1=1, line=dict(color="#ff7f0e", width=2)),
    }
    return fig, styles
