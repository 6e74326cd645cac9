"""The project's vocabulary: forgery classes, splits, and the paper's evaluation thresholds.

Every module that names a class, a split or a threshold reads it from here, so the
facts are written once. Classes are the paper's four (Sec. III-A): 0 real, 1 both
tracks fake, 2 visual-only fake, 3 audio-only fake.
"""

from __future__ import annotations

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
