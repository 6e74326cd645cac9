"""The evaluation report as one interactive, self-contained HTML page per dataset.

    python -m evaluation.viewer --config results/effective_config.yaml --dataset D \
        --manifest results/D/manifest.jsonl --metrics results/D/runs/full/test/metrics.json \
        --predictions results/D/runs/full/test/predictions.json \
        --classes results/D/runs/full/test/classes.csv --outputs results/D/runs/full/test/outputs.npz \
        --out results/D/report.html [--reference ... --features ... --model ... --tables ... ...]

The page opens from disk with no network and no server: plotly.js is written inline once,
the figures are plotly's, and the test clips are copied beside the page (``report_videos/``)
while their total stays under a size bound, failures first, the others linked by a relative
path (docs/decisions/viewer.md). It shows the Table I layout with the paper's numbers, the
four-class confusion, training curves, Fig. 3 and Fig. 4, the ablation and cross-dataset
tables, and every test video: the clip beside the FAS of the visual, audio and multimodal
heads and of the chosen expert, the true and predicted forged segments as bands, a cursor
that follows playback, seeking on a click of a segment; a list sorted and filtered by true
and predicted type, P(fake) and kind of error (docs/viewer.md).

The page kit both pages share is in the core, ``wmmt.viewer`` (``videos``: per-video records,
kinds of error, copying and linking the clips; ``figures``: plotly figures; ``page``: HTML
assembly), so that ``python -m model.predict --video V.mp4 --out DIR`` writes the page of one
video (``model.video_page``) without the model layer importing evaluation. This package adds
the dataset's page (``dataset``) and its CLI.
"""

from evaluation.viewer.dataset import DatasetInputs, build_dataset_page
from model.video_page import write_video_page

__all__ = ["DatasetInputs", "build_dataset_page", "write_video_page"]
