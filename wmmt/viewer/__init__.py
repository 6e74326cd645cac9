"""The interactive pages' kit: plotly figures, per-video records and self-contained HTML.

It works on plain data (scores, segments, tables as text), so the single-video page of
``python -m model.predict --video`` (model.video_page) and the dataset's report page
(evaluation.viewer) share it. viewer.js and viewer.css are written inline into every page.
"""
