"""The field's evaluation protocols beside the paper's: LAV-DF's and AV-Deepfake1M's own tables.

Published LAV-DF and AV-Deepfake1M results are scored with their datasets' thresholds, not
the WMMT paper's (``wmmt.vocab.LAVDF_PROTOCOL``, ``AVDEEPFAKE1M_PROTOCOL``):

* LAV-DF (its ``evaluate.py``): AP at IoU 0.5 / 0.75 / 0.95 and AR@100 / 50 / 20 / 10, on the
  full test set, on the set without audio-only fakes (``subset_for_visual_only``, where
  visual-only methods are compared) and on the set without visual-only fakes
  (``subset_for_audio_only``);
* AV-Deepfake1M (its toolkit and the 1M-Deepfakes challenge): AP at IoU 0.5 / 0.75 / 0.9 /
  0.95 and AR@50 / 30 / 20 / 10 / 5 on the full set, and the challenge's combined score
  0.5 * mean AP + 0.5 * mean AR.

AR is averaged over IoU 0.5:0.05:0.95 in both. AP and AR follow ``wmmt.metrics`` (the
semantics of both toolkits); a subset drops only the fakes it names, so the real videos and
their false alarms stay in every subset, as in LAV-DF's code.

``evaluation.evaluate`` writes the dataset's own protocol into ``metrics.json``::

    "protocols": {"lavdf": {"title": "LAV-DF", "source": ..., "ap_ious": [0.5, 0.75, 0.95],
        "ar_ns": [100, 50, 20, 10], "ar_ious": [0.5, ..., 0.95],
        "subsets": {"full": {"title": "full set", "drops": [], "ap": {"0.5": ...}, "ar": {"100": ...},
                             "num_videos": ..., "num_segments": ...},
                    "subset_for_visual_only": {...}, "subset_for_audio_only": {...}}}}

(AV-Deepfake1M's subset also has ``"score"``.) Undefined values (no ground-truth segment
in a subset) are null. ``protocol_table(metrics)`` renders that entry as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from wmmt.metrics import EvaluationError, LocalizationSet, localization_metrics
from wmmt.vocab import AR_IOUS, LABEL_NAMES, NUM_CLASSES, PROTOCOLS, Protocol, ProtocolSubset

__all__ = ["PROTOCOLS", "Protocol", "protocol_metrics", "protocol_table", "subset_keep"]


def _finite_or_none(value: float):
    return float(value) if math.isfinite(value) else None


def subset_keep(labels: np.ndarray, subset: ProtocolSubset) -> np.ndarray:
    """(V,) bool: the videos of ``subset`` among videos with class ``labels`` (V,)."""
    return ~np.isin(np.asarray(labels), subset.drops)


def _check_labels(data: LocalizationSet, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (data.num_videos,):
        raise EvaluationError(f"protocol subsets need one label per evaluated video ({data.num_videos}), "
                              f"got shape {labels.shape}")
    bad = np.flatnonzero(~np.isin(labels, np.arange(NUM_CLASSES)))
    if len(bad):
        first = int(bad[0])
        raise EvaluationError(f"label of {data.video_ids[first]!r} is {labels[first].item()!r}, not a class "
                              f"0..{NUM_CLASSES - 1}; protocol subsets need every evaluated video's class")
    return labels.astype(np.int64)


def protocol_metrics(data: LocalizationSet, labels: Sequence[int] | np.ndarray, protocol: Protocol) -> dict:
    """``protocol``'s AP and AR on each of its subsets of ``data``, as JSON (see the module docstring).

    ``labels``: the class (0..3) of each video of ``data``, in its order.
    """
    labels = _check_labels(data, labels)
    subsets = {}
    for subset in protocol.subsets:
        part = data.subset(subset_keep(labels, subset))
        ap, ar = localization_metrics(part, protocol.ap_ious, protocol.ar_ns, protocol.ar_ious)
        block = {
            "title": subset.title,
            "drops": [LABEL_NAMES[label] for label in subset.drops],
            "ap": {str(t): _finite_or_none(v) for t, v in ap.items()},
            "ar": {str(n): _finite_or_none(v) for n, v in ar.items()},
            "num_videos": part.num_videos,
            "num_segments": part.num_gt,
        }
        if protocol.combined_score:
            block["score"] = _finite_or_none(0.5 * np.mean(list(ap.values())) + 0.5 * np.mean(list(ar.values())))
        subsets[subset.name] = block
    return {
        "title": protocol.title,
        "source": protocol.source,
        "ap_ious": list(protocol.ap_ious),
        "ar_ns": list(protocol.ar_ns),
        "ar_ious": list(protocol.ar_ious),
        "combined_score": protocol.combined_score,
        "subsets": subsets,
    }


# --------------------------------------------------------------------------- rendering


def _percent(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def _iou_range(ious: Sequence[float]) -> str:
    if len(ious) == len(AR_IOUS) and all(math.isclose(a, b) for a, b in zip(ious, AR_IOUS)):
        return "0.5:0.05:0.95"
    return ", ".join(f"{t:g}" for t in ious)


def _one_table(entry: dict, split: str | None) -> str:
    ap_ious, ar_ns = entry["ap_ious"], entry["ar_ns"]
    combined = entry.get("combined_score", False)
    head = ["subset", "videos", "segments", *(f"AP@{t:g}" for t in ap_ious), *(f"AR@{n}" for n in ar_ns)]
    head += ["score"] if combined else []
    on = f", {split} split" if split else ""
    thresholds = ", ".join(f"{t:g}" for t in ap_ious)
    lines = [
        f"**{entry['title']} protocol**{on}, as in {entry['source']}: AP at IoU {thresholds}; "
        f"AR@N averaged over IoU {_iou_range(entry['ar_ious'])}; in percent."
        + (" Score = 0.5 x mean AP + 0.5 x mean AR (the 1M-Deepfakes challenge's)." if combined else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for key, block in entry["subsets"].items():
        label = block["title"] if key == "full" else f"{block['title']} (`{key}`)"
        cells = [label, str(block["num_videos"]), str(block["num_segments"])]
        cells += [_percent(block["ap"][str(float(t))]) for t in ap_ious]
        cells += [_percent(block["ar"][str(int(n))]) for n in ar_ns]
        cells += [_percent(block["score"])] if combined else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def protocol_table(metrics: dict) -> str:
    """Markdown: one table per protocol in ``metrics["protocols"]`` (a metrics.json), subsets as rows.

    Empty when the metrics hold no protocol (a metrics.json written before protocols existed).
    """
    protocols = metrics.get("protocols") or {}
    tables = []
    for name, entry in protocols.items():
        try:
            tables.append(_one_table(entry, metrics.get("split")))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"metrics: protocol {name!r} is malformed (missing or bad {exc})") from None
    return "\n".join(tables)
