"""The interactive page of one raw video (``python -m evaluation.viewer --checkpoint best.pt --video V.mp4
--out DIR``): the video, its FAS per head and of the chosen expert, the predicted segments, the class
probabilities."""

from __future__ import annotations

import html
from pathlib import Path

from evaluation.viewer.page import Figures, page_data, videos_section, write_page
from evaluation.viewer.videos import _top, place_videos, score_record
from model.proposals import ProposalPolicy
from wmmt.vocab import CLASS_NAMES, REAL

PAGE_NAME = "prediction.html"
DEFAULT_COPY_MB = 500.0


def _record(result, video_path: Path, segments, head_segments: dict) -> dict:
    entry = {"score_expert": result.expert_score, "video_class": result.video_class, "fps": result.fps}
    entry.update({f"score_{h}": s for h, s in result.head_scores.items() if s is not None})
    probs = [float(p) for p in result.class_probs]
    rec = {"id": video_path.name, "true": None, "pred": int(result.video_class), "probs": [round(p, 4) for p in probs],
           "p_fake": round(1.0 - probs[REAL], 4), "failed": False, "error": "unlabelled", "iou": None,
           "truth": {"all": [], "visual": [], "audio": []}, "pred_segments": _top(segments),
           "head_segments": {h: _top(s) for h, s in head_segments.items()}, "path": str(video_path)}
    rec.update(score_record(entry))
    rec["duration"] = rec["n"] / rec["fps"] if rec["fps"] else None
    return rec


def write_video_page(result, video_path, out_dir, segments=None, settings: dict | None = None,
                     copy_mb: float = DEFAULT_COPY_MB) -> Path:
    """Write ``out_dir/prediction.html`` for one video's ``result`` (a model.inference.VideoResult).

    ``segments``: the expert's [score, start, end] as model.predict reports them (by default the
    expert's proposals by ``settings``, model.proposals' defaults when None); each head's proposals
    are drawn too. The clip is copied beside the page when it is at most ``copy_mb`` MB, else
    linked by a relative path.
    """
    policy = ProposalPolicy() if settings is None else ProposalPolicy(dict(settings))
    video_path, out_dir = Path(video_path), Path(out_dir)
    if segments is None:
        segments = policy.expert(result)
    heads = {h: policy.head(result, h) for h, s in result.head_scores.items() if s is not None}
    rec = _record(result, video_path, segments, heads)
    page = out_dir / PAGE_NAME
    counts = place_videos([rec], page, copy_mb)
    probs = "".join(f"<tr><td>{html.escape(CLASS_NAMES[i])}</td><td>{p:.3f}</td></tr>"
                    for i, p in enumerate(rec["probs"]))
    verdict = (f"<p>Predicted forgery type: <b>{html.escape(CLASS_NAMES[rec['pred']])}</b>; "
               f"{len(rec['pred_segments']) if rec['pred'] else 0} forged segment(s) reported.</p>"
               f'<table class="md"><thead><tr><th>class</th><th>probability</th></tr></thead>'
               f"<tbody>{probs}</tbody></table>")
    clip = ("copied beside the page" if counts["copied"] else
            "linked by a relative path (larger than the copy bound)" if counts["linked"] else "not found")
    sections = [("prediction", "Prediction", verdict + f'<p class="note">Video {clip}.</p>'),
                ("video", "", videos_section(single=True))]
    data = page_data([rec], single=True, extra={"clips": counts})
    return write_page(page, f"WMMT: {video_path.name}", sections, data, Figures())
