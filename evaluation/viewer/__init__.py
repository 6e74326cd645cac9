"""The interactive, self-contained HTML pages: the report of a dataset and the page of one raw video.

    python -m evaluation.viewer --config C --dataset D --out results/D/report.html ...   # a dataset's page
    python -m evaluation.viewer --checkpoint best.pt --video V.mp4 --out DIR            # one raw video

A page opens from disk with no network and no server: plotly.js is written inline once,
the figures are plotly's, and the test clips are copied beside the page (``report_videos/``)
while their total stays under a size bound, failures first, the others linked by a relative
path (docs/decisions/viewer.md). The dataset's page shows the Table I layout with the paper's
numbers, the four-class confusion, training curves, Fig. 3 and Fig. 4 (from the report's
computed file, evaluation.report_data), the ablation and cross-dataset tables, and every test
video: the clip beside the FAS of the visual, audio and multimodal heads and of the chosen
expert, the true and predicted forged segments as bands, a cursor that follows playback,
seeking on a click of a segment; a list sorted and filtered by true and predicted type,
P(fake) and kind of error (docs/viewer.md).

The kit both pages share: ``videos`` (per-video records, kinds of error, copying and linking
the clips), ``figures`` (plotly figures), ``page`` (HTML assembly, ``viewer.js``,
``viewer.css``); the pages: ``dataset`` (a dataset's) and ``video`` (one raw video's); the CLI
in ``__main__``. This file imports none of them, so the package has no import circle.
"""
