"""The per-video records of the viewer: scores, segments, kind of error, and where the clip is.

One record per test video, as the page's JavaScript reads it (JSON):
``id``, ``true`` / ``pred`` (class or null), ``p_fake`` (1 - p0 of classes.csv), ``iou``
(IoU of the top-scoring predicted segment with the best-matching true segment), ``error``
(one of ``ERROR_KINDS``), ``expert`` (the head modality-aware selection chose), ``fps``,
``n`` (frames), ``duration``, ``scores`` (per head, packed by ``pack_scores``), ``truth``
(all / visual / audio forged segments), ``pred_segments`` and ``head_segments`` (top
``MAX_SEGMENTS`` proposals, [score, start, end]), and ``src`` / ``copied`` / ``missing``
(set by ``place_videos``).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import numpy as np

from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

HEADS = ("visual", "audio", "multimodal")
# The head whose FAS is the chosen expert's, by predicted class (Sec. III-C3); class 0 gets none.
EXPERT_OF_CLASS = {REAL: None, BOTH_FAKE: "multimodal", VISUAL_ONLY_FAKE: "visual", AUDIO_ONLY_FAKE: "audio"}
ERROR_KINDS = ("correct", "missed forgery", "false alarm", "wrong modality", "extraction failed", "unlabelled")
# The order in which clips are copied beside the page while the size bound allows: failures first.
COPY_PRIORITY = ("missed forgery", "wrong modality", "false alarm", "extraction failed", "correct", "unlabelled")
MAX_SEGMENTS = 10  # proposals drawn per video and head (the highest-scoring ones)
MARKER = ".wmmt-viewer"  # marks a folder of copied clips as the viewer's own, safe to empty


def pack_scores(scores) -> str:
    """Per-frame scores in [0, 1] as base64 bytes, one byte a frame (steps of 1/255): a long test
    split stays a page a browser opens (4 heads x 200 frames ~ 1 kB a video)."""
    q = np.clip(np.round(np.asarray(scores, np.float64) * 255), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def unpack_scores(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).astype(np.float64) / 255


def error_kind(true: int | None, pred: int | None, failed: bool = False) -> str:
    """What went wrong with a video's forgery type (``ERROR_KINDS``)."""
    if true is None:
        return "unlabelled"
    if failed:
        return "extraction failed"
    if true == pred:
        return "correct"
    if pred == REAL:
        return "missed forgery"
    if true == REAL:
        return "false alarm"
    return "wrong modality"


def top1_iou(segments, truth) -> float | None:
    """IoU of the highest-scoring [score, start, end] with the true segment it overlaps most
    (None where the video has no true segment; 0 where nothing was predicted)."""
    if not truth:
        return None
    if not segments:
        return 0.0
    _, a, b = max(segments, key=lambda s: s[0])
    best = 0.0
    for s, e in truth:
        inter = max(0.0, min(b, e) - max(a, s))
        union = max(b, e) - min(a, s)
        best = max(best, inter / union if union > 0 else 0.0)
    return best


def _top(segments) -> list[list[float]]:
    ranked = sorted(segments or [], key=lambda s: -s[0])[:MAX_SEGMENTS]
    return [[round(float(s), 4), round(float(a), 3), round(float(b), 3)] for s, a, b in ranked]


def _segments(value) -> list[list[float]]:
    return [[round(float(s), 3), round(float(e), 3)] for s, e in (value if isinstance(value, list) else [])]


def _missing(value) -> bool:
    """A null of the manifest (None, or NaN in a pandas column of numbers)."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _label(value) -> int | None:
    return None if _missing(value) else int(value)


def score_record(video: dict | None) -> dict:
    """The FAS part of a record from one ``read_outputs`` entry (None: no features)."""
    if video is None:
        return {"scores": {}, "expert": None, "fps": None, "n": 0}
    scores = {h: pack_scores(video[f"score_{h}"]) for h in HEADS if f"score_{h}" in video}
    expert = EXPERT_OF_CLASS.get(int(video["video_class"]))
    if expert is None or f"score_{expert}" not in video \
            or not np.allclose(video[f"score_{expert}"], video["score_expert"], atol=1e-6):
        scores["expert"] = pack_scores(video["score_expert"])  # not one head's curve: keep its own
    return {"scores": scores, "expert": expert, "fps": float(video["fps"]), "n": len(video["score_expert"])}


def video_records(manifest, outputs: dict, classes: dict, predictions: dict,
                  head_predictions: dict | None = None, split: str = "test") -> list[dict]:
    """One record per video of ``split`` (manifest order), without its place (``place_videos``)."""
    rows = manifest[manifest["split"] == split]
    if len(rows) == 0:
        raise ValueError(f"the manifest has no videos in split {split!r}")
    head_predictions = head_predictions or {}
    records = []
    for row in rows.to_dict("records"):
        vid = row["video_id"]
        cls = classes.get(vid)
        if cls is None:
            raise ValueError(f"classes.csv has no row for test video {vid}")
        true, pred = _label(row.get("label")), cls["pred"]
        truth = {"all": _segments(row.get("fake_periods")), "visual": _segments(row.get("visual_fake_periods")),
                 "audio": _segments(row.get("audio_fake_periods"))}
        pred_segments = _top(predictions.get(vid))
        rec = {"id": vid, "true": true, "pred": pred, "probs": [round(p, 4) for p in cls["probs"]],
               "p_fake": round(1.0 - cls["probs"][REAL], 4), "failed": cls["failed"],
               "error": error_kind(true, pred, cls["failed"]), "iou": top1_iou(pred_segments, truth["all"]),
               "duration": None if _missing(row.get("duration")) else float(row["duration"]),
               "truth": truth, "pred_segments": pred_segments,
               "head_segments": {h: _top(p.get(vid)) for h, p in head_predictions.items()},
               "path": row.get("path")}
        rec.update(score_record(outputs["videos"].get(vid)))
        if rec["duration"] is None and rec["fps"]:
            rec["duration"] = rec["n"] / rec["fps"]
        records.append(rec)
    return records


def _safe_name(video_id: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._") or "video"
    name, k = stem, 1
    while name.lower() in taken:
        k += 1
        name = f"{k}_{stem}"
    taken.add(name.lower())
    return name


def videos_folder(page: Path) -> Path:
    """Where the copied clips of a page go: ``<page stem>_videos`` beside it."""
    return page.with_name(f"{page.stem}_videos")


def _fresh_folder(folder: Path) -> None:
    """Empty ``folder`` for a new set of copies; a folder that is not the viewer's own is an error."""
    if folder.exists():
        if not (folder / MARKER).is_file() and any(folder.iterdir()):
            raise ValueError(f"{folder}: exists and was not made by the viewer (no {MARKER}); "
                             "move it away or choose another --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("clips copied by python -m evaluation.viewer; emptied on each build\n")


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _link(path: Path, page_dir: Path) -> str:
    return urllib.parse.quote(Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix())


def place_videos(records: list[dict], page: Path, limit_mb: float) -> dict:
    """Copy clips beside ``page`` while their total stays under ``limit_mb`` MB (failures first,
    ``COPY_PRIORITY``), link the others by a relative path; a clip not on disk gets a message.
    Sets ``src``, ``copied`` and ``missing`` of each record; returns counts and sizes."""
    page = Path(page)
    folder = videos_folder(page)
    _fresh_folder(folder)
    budget, used, taken = limit_mb * 1e6, 0, set()
    order = sorted(range(len(records)), key=lambda i: (COPY_PRIORITY.index(records[i]["error"]), records[i]["id"]))
    counts = {"copied": 0, "linked": 0, "missing": 0, "copied_mb": 0.0, "limit_mb": limit_mb,
              "folder": folder.name}
    for i in order:
        rec = records[i]
        path = Path(rec.pop("path", None) or "")
        rec.update(src=None, copied=False, missing=None)
        if not rec_path_ok(path):
            rec["missing"] = f"video file not found: {path}" if str(path) not in ("", ".") else "no video file"
            counts["missing"] += 1
            continue
        size = path.stat().st_size
        if used + size <= budget:
            name = _safe_name(rec["id"], taken)
            name += "" if name.lower().endswith(path.suffix.lower()) else path.suffix
            _copy(path, folder / name)
            used += size
            rec.update(src=urllib.parse.quote(f"{folder.name}/{name}"), copied=True)
            counts["copied"] += 1
        else:
            rec["src"] = _link(path, page.parent)
            counts["linked"] += 1
    counts["copied_mb"] = round(used / 1e6, 2)
    return counts


def rec_path_ok(path: Path) -> bool:
    return str(path) not in ("", ".") and path.is_file()
