"""Assembling one self-contained HTML page: plotly.js inline once, the figures, the tables (the
report's Markdown tables turned into HTML), the per-video data as JSON, the viewer's script."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from evaluation.viewer.figures import fas_template
from evaluation.viewer.videos import COPY_PRIORITY, ERROR_KINDS
from wmmt.io import write_text
from wmmt.vocab import CLASS_SHORT_NAMES

HERE = Path(__file__).resolve().parent
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


class Figures:
    """Writes figures as HTML fragments: the first one carries plotly.js (inline, no network), the
    others reuse it."""

    def __init__(self):
        self.included = False

    def html(self, fig, div_id: str | None = None) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=not self.included, config=PLOT_CONFIG,
                          div_id=div_id)
        self.included = True
        return out

    def bundle(self) -> str:
        """plotly.js alone, for a page whose figures the script draws (nothing was included yet)."""
        if self.included:
            return ""
        from plotly.offline import get_plotlyjs

        self.included = True
        return f'<script type="text/javascript">{get_plotlyjs()}</script>'


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"!\[[^\]]*\]\([^)]*\)", "", out)  # the Markdown report's PNGs are not part of this page


def _table(lines: list[str]) -> str:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
    cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f'<table class="md"><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>'


def markdown_to_html(text: str, level_offset: int = 0) -> str:
    """The Markdown the report writes (headings, tables, paragraphs, quotes, code blocks) as HTML."""
    out, para, lines = [], [], text.splitlines()

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(f"<pre>{html.escape(chr(10).join(lines[i + 1:j]))}</pre>")
            i = j + 1
            continue
        if line.lstrip().startswith("|"):
            flush()
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
            continue
        heading = re.match(r"(#+)\s+(.*)", line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + level_offset)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.startswith(">"):
            flush()
            out.append(f'<div class="warning">{_inline(line.lstrip("> "))}</div>')
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
        i += 1
    flush()
    return "\n".join(out)


def _options(values) -> str:
    return "".join(f'<option value="{html.escape(str(v))}">{html.escape(str(label))}</option>' for v, label in values)


def videos_section(single: bool = False) -> str:
    """The list of test videos (filters, sortable columns) and the selected video's panel."""
    classes = [("", "any"), *enumerate(CLASS_SHORT_NAMES)]
    errors = [("", "any"), ("errors", "any error"), *((k, k) for k in ERROR_KINDS)]
    columns = (("id", "video"), ("true", "true"), ("pred", "predicted"), ("p_fake", "P(fake)"),
               ("iou", "top-1 IoU"), ("error", "kind of error"), ("copied", "clip"))
    head = "".join(f'<th data-key="{k}">{html.escape(label)}</th>' for k, label in columns)
    listing = f"""<div id="list-pane">
<div class="filters">
<label>true <select id="f-true">{_options(classes)}</select></label>
<label>predicted <select id="f-pred">{_options(classes)}</select></label>
<label>error <select id="f-error">{_options(errors)}</select></label>
<label>P(fake) from <input id="f-min" type="number" min="0" max="1" step="0.05"></label>
<label>to <input id="f-max" type="number" min="0" max="1" step="0.05"></label>
<label>video <input id="f-text" type="search" placeholder="name contains"></label>
<button id="prev" title="previous in the list">&larr;</button><button id="next" title="next in the list">&rarr;</button>
</div>
<div id="list-count" class="note"></div>
<div id="list-scroll"><table id="video-list" class="list"><thead><tr>{head}</tr></thead><tbody></tbody></table></div>
</div>"""
    detail = """<div id="detail-pane">
<h3 id="video-title"></h3>
<div id="player"></div>
<div id="video-info"></div>
<div class="note">Bands: red = forged (ground truth), blue = predicted segments (darker = higher score).
Click a band to play from its start, or click the plot at a time. Cursor at <span id="clock">0.00 s</span>.</div>
<div id="strips"></div>
<div id="fas-plot"></div>
</div>"""
    return f'<div id="videos-pane">{"" if single else listing}{detail}</div>'


def _json_script(data) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return f'<script type="application/json" id="wmmt-data">{text.replace("</", "<" + chr(92) + "/")}</script>'


def page_data(videos: list[dict], single: bool, extra: dict | None = None) -> dict:
    """What the page's script reads: the records, the names, the FAS figure template and band styles."""
    import plotly.io as pio

    fig, styles = fas_template()
    template = json.loads(pio.to_json(fig, validate=True))
    template["layout"].pop("template", None)  # plotly's default template is applied by plotly.js anyway
    return {"videos": videos, "single": single, "class_names": list(CLASS_SHORT_NAMES),
            "error_kinds": list(ERROR_KINDS), "error_order": list(COPY_PRIORITY),
            "fas_template": template, "fas_styles": styles, **(extra or {})}


def write_page(path, title: str, sections: list[tuple[str, str, str]], data: dict, figures: Figures) -> Path:
    """The page at ``path``: ``sections`` are (anchor, heading, html body); ``data`` is page_data()."""
    css = (HERE / "viewer.css").read_text(encoding="utf-8")
    script = (HERE / "viewer.js").read_text(encoding="utf-8")
    nav = " ".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections if h)
    body = "\n".join(f'<section id="{a}">' + (f"<h2>{html.escape(h)}</h2>" if h else "") + f"\n{b}\n</section>"
                     for a, h, b in sections)
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>{css}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<nav>{nav}</nav>
{figures.bundle()}
{body}
{_json_script(data)}
<script>{script}</script>
</body></html>
"""
    write_text(path, text)
    return Path(path)
