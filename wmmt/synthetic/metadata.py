"""The metadata records of a clip, in the LAV-DF and the AV-Deepfake1M schemas."""

from __future__ import annotations

from wmmt.synthetic.plan import ClipPlan
from wmmt.vocab import AUDIO_ONLY_FAKE, BOTH_FAKE, REAL, VISUAL_ONLY_FAKE

AV1M_MODIFY_TYPE = {
    REAL: "real",
    BOTH_FAKE: "both_modified",
    VISUAL_ONLY_FAKE: "visual_modified",
    AUDIO_ONLY_FAKE: "audio_modified",
}
AUDIO_MODEL = "synthetic-formant"  # the AV-Deepfake1M ``audio_model`` of our audio edits (family a)
AUDIO_MODELS = {"a": AUDIO_MODEL, "b": "synthetic-clone"}  # per forgery family


def lavdf_record(plan: ClipPlan) -> dict:
    return {
        "file": plan.file,
        "n_fakes": len(plan.segments),
        "fake_periods": plan.periods(),
        "duration": plan.duration,
        "original": plan.original,
        "modify_video": plan.modify_video,
        "modify_audio": plan.modify_audio,
        "split": plan.split,
        "video_frames": plan.num_frames,
        "audio_channels": 1,
        "audio_frames": plan.num_samples,
    }


def av1m_record(plan: ClipPlan) -> dict:
    periods = plan.periods()
    return {
        "file": plan.file,
        "original": plan.original,
        "split": plan.split,
        "modify_type": AV1M_MODIFY_TYPE[plan.label],
        "audio_model": AUDIO_MODELS[plan.family] if plan.modify_audio else "",
        "fake_segments": periods,
        "audio_fake_segments": periods if plan.modify_audio else [],
        "visual_fake_segments": periods if plan.modify_video else [],
        "video_frames": plan.num_frames,
        "audio_frames": plan.num_samples,
    }


def metadata_files(fmt: str) -> tuple[str, ...]:
    """Names of the metadata files of a format, in the order they are written."""
    return ("metadata.json",) if fmt == "lavdf" else ("val_metadata.json", "train_metadata.json")
