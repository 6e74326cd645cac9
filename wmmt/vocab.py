"""The project's vocabulary: forgery classes, splits, the paper's evaluation thresholds
and the field's evaluation protocols (LAV-DF's and AV-Deepfake1M's).

Every module that names a class, a split or a threshold reads it from here, so the
facts are written once. Classes are the paper's four (Sec. III-A): 0 real, 1 both
tracks fake, 2 visual-only fake, 3 audio-only fake.
"""

from __future__ import annotations

from dataclasses import dataclass

REAL, BOTH_FAKE, VISUAL_ONLY_FAKE, AUDIO_ONLY_FAKE = 0, 1, 2, 3
NUM_CLASSES = 4
# Display names (predictions, reports) and manifest names (LAV-DF-style tokens), by class.
CLASS_NAMES = ("real", "both fake", "visual-only fake", "audio-only fake")
CLASS_SHORT_NAMES = ("real", "both fake", "visual-only", "audio-only")
LABEL_NAMES = {REAL: "real", BOTH_FAKE: "both_fake", VISUAL_ONLY_FAKE: "visual_fake", AUDIO_ONLY_FAKE: "audio_fake"}
# The classes in which a track is fake: y_v = 1 for {1, 2}, y_a = 1 for {1, 3}, psi = 1 for {1, 2, 3}.
VISUAL_FAKE = (BOTH_FAKE, VISUAL_ONLY_FAKE)
AUDIO_FAKE = (BOTH_FAKE, AUDIO_ONLY_FAKE)
ANY_FAKE = (BOTH_FAKE, VISUAL_ONLY_FAKE, AUDIO_ONLY_FAKE)

# Splits of labelled rows; an unlabelled test list's rows take the list's name as their split.
SPLITS = ("train", "dev", "test")

# The paper's tables: mAP at IoU 0.1..0.7 (their mean is "avg mAP") and AR@20, 10, 5, 2.
PAPER_AP_IOUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PAPER_AR_NS = (20, 10, 5, 2)
# What the evaluator computes by default: the paper's thresholds plus AV-Deepfake1M's 0.75 and 0.95.
EVAL_AP_IOUS = (*PAPER_AP_IOUS, 0.75, 0.95)
# AR averages recall over these IoU thresholds (LAV-DF and the AV-Deepfake1M toolkit).
AR_IOUS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# --------------------------------------------------------------------------- the field's protocols
# Published LAV-DF and AV-Deepfake1M tables are not scored the paper's way: each dataset has its
# own thresholds, and LAV-DF also scores two subsets of its test set. The AP/AR semantics are the
# same as everywhere else (wmmt.metrics); only the thresholds and the evaluated videos differ.


@dataclass(frozen=True)
class ProtocolSubset:
    """The evaluated videos less those whose label is in ``drops`` (the real videos always stay)."""

    name: str  # key in metrics.json; LAV-DF's own names where it has them
    title: str  # row label in the protocol table
    drops: tuple[int, ...] = ()

    def keeps(self, label: int) -> bool:
        return label not in self.drops


@dataclass(frozen=True)
class Protocol:
    """One dataset's published evaluation: AP at ``ap_ious``, AR@N for ``ar_ns`` averaged over ``ar_ious``."""

    name: str
    title: str
    source: str  # where the published numbers come from
    ap_ious: tuple[float, ...]
    ar_ns: tuple[int, ...]
    subsets: tuple[ProtocolSubset, ...]
    ar_ious: tuple[float, ...] = AR_IOUS
    # The 1M-Deepfakes challenge ranks localisation by 0.5 * mean AP + 0.5 * mean AR.
    combined_score: bool = False


FULL_SET = ProtocolSubset("full", "full set")
# LAV-DF's evaluate.py (BA-TFD): the full test set; without audio-only fakes (modify_video false and
# modify_audio true), the set visual-only methods are compared on; without visual-only fakes.
LAVDF_PROTOCOL = Protocol(
    name="lavdf",
    title="LAV-DF",
    source="LAV-DF's evaluate.py (BA-TFD)",
    ap_ious=(0.5, 0.75, 0.95),
    ar_ns=(100, 50, 20, 10),
    subsets=(
        FULL_SET,
        ProtocolSubset("subset_for_visual_only", "without audio-only fakes", (AUDIO_ONLY_FAKE,)),
        ProtocolSubset("subset_for_audio_only", "without visual-only fakes", (VISUAL_ONLY_FAKE,)),
    ),
)
# The AV-Deepfake1M paper, its toolkit's examples and the 1M-Deepfakes challenge.
AVDEEPFAKE1M_PROTOCOL = Protocol(
    name="avdeepfake1m",
    title="AV-Deepfake1M",
    source="the AV-Deepfake1M toolkit (avdeepfake1m.evaluation.ap_ar_1d)",
    ap_ious=(0.5, 0.75, 0.9, 0.95),
    ar_ns=(50, 30, 20, 10, 5),
    subsets=(FULL_SET,),
    combined_score=True,
)
# Each dataset format's own protocol, by the format names of evaluation.evaluate.
PROTOCOLS = {p.name: p for p in (LAVDF_PROTOCOL, AVDEEPFAKE1M_PROTOCOL)}
