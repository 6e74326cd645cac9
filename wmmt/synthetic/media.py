"""The clips' media format: 224x224 frames at 25 fps, mono audio at 16 kHz, and the speech control grid."""

from __future__ import annotations

FPS = 25
SAMPLE_RATE = 16_000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
# Speech parameters (envelopes, formants, pitch) live on a 400 Hz control grid:
# 16 control points per video frame, 40 audio samples per control point.
CONTROL_STEP = 40
CONTROLS_PER_FRAME = SAMPLES_PER_FRAME // CONTROL_STEP
SIZE = 224
MARGIN = 8  # the scene canvas is larger than the frame by this on each side (camera motion)
