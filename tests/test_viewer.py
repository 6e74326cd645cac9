"""The interactive report page (evaluation.viewer): its content without a browser, and its behaviour
in a real headless Chromium driven by playwright (loads without console errors, the video plays,
a click on a predicted segment seeks the video, sorting reorders the list, a missing video shows a
message). The inputs are small and made here: real mp4 clips, model.predict's own output files
from hand-made results, metrics from the evaluator."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.evaluate import evaluate
from evaluation.report_data import compute_report_data
from evaluation.viewer.dataset import DatasetInputs, build_dataset_page
from evaluation.viewer.page import markdown_to_html
from evaluation.viewer.video import write_video_page
from evaluation.viewer.videos import error_kind, pack_scores, top1_iou, unpack_scores
from model.inference import VideoResult
from model.prediction_files import read_outputs, write_outputs
from tests.helpers.clips import make_clip
from wmmt.io import write_json
from wmmt.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent
FPS = 25.0
CHROMIUM = os.environ.get("WMMT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# name: (true label, predicted class, seconds, forged periods, clip on disk)
VIDEOS = {
    "real.mp4": (0, 0, 2.0, [], True),
    "both.mp4": (1, 0, 2.0, [[0.8, 1.4]], True),  # missed forgery
    "visual.mp4": (2, 3, 2.0, [[0.4, 1.0]], True),  # wrong modality
    "audio.mp4": (3, 3, 2.0, [[1.0, 1.6]], True),
    "gone.mp4": (0, 1, 2.0, [], False),  # false alarm, and its clip is not on disk
}
CONFIG = {"datasets": {"toy": {"format": "lavdf"}}, "ablations": False, "report": {"tsne_videos": 200}}


def _result(vid: str, label: int, pred: int, seconds: float, periods, seed: int) -> VideoResult:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FPS)) / FPS
    forged = np.zeros_like(t, dtype=bool)
    for s, e in periods:
        forged |= (t >= s) & (t < e)
    heads = {h: np.clip(0.15 + 0.7 * forged + 0.05 * rng.standard_normal(len(t)), 0, 1)
             for h in ("visual", "audio", "multimodal")}
    probs = np.full(4, 0.1)
    probs[pred] = 0.7
    expert = heads[{0: "multimodal", 1: "multimodal", 2: "visual", 3: "audio"}[pred]]
    if pred != label and pred != 0:  # a wrong guess still flags the forged frames of its head
        expert = heads["multimodal"]
    names = ("f_v_embed", "f_v", "f_a_embed", "f_a", "f_m_embed", "f_m")
    embeddings = {k: rng.standard_normal(8) + label for k in names}
    return VideoResult(vid, FPS, pred, probs, expert, heads, embeddings)


def _manifest_row(vid: str, label: int, seconds: float, periods, path: Path) -> dict:
    vis = periods if label in (1, 2) else []
    aud = periods if label in (1, 3) else []
    return {"video_id": vid, "path": str(path), "split": "test", "label": label, "duration": seconds,
            "video_frames": int(seconds * FPS), "fps": FPS, "fake_periods": periods,
            "visual_fake_periods": vis, "audio_fake_periods": aud}


def make_inputs(root: Path) -> DatasetInputs:
    """A five-video test split: clips, manifest, model.predict's files, metrics, a training log."""
    clips, run = root / "clips", root / "runs" / "full" / "test"
    clips.mkdir(parents=True)
    rows, results = [], []
    for i, (vid, (label, pred, seconds, periods, on_disk)) in enumerate(VIDEOS.items()):
        if on_disk:
            make_clip(clips / vid, seconds=seconds, fps=FPS, size=(96, 64), seed=i, faststart=True)
        rows.append(_manifest_row(vid, label, seconds, periods, clips / vid))
        results.append(_result(vid, label, pred, seconds, periods, seed=i))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"method": "runs", "threshold": 0.5, "nms_iou": 0.5, "max_proposals": 100}
    write_outputs(results, run, settings)
    manifest = load_manifest(root / "manifest.jsonl")
    predictions = json.loads((run / "predictions.json").read_text())
    classes = (np.array([r.video_class for r in results]), np.stack([r.class_probs for r in results]))
    (run / "metrics.json").write_text(json.dumps(evaluate(predictions, manifest, classes=classes)))
    with open(root / "runs" / "full" / "train_log.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "loss_m", "dev_acc", "dev_loss"])
        for step in range(0, 60, 10):
            writer.writerow([step, 1.0 / (1 + step), 0.5 / (1 + step), "" if step % 20 else 0.25 + step / 100, ""])
    # The report's computed file, without Fig. 3 (no model or feature cache here).
    write_json(root / "report_data.json",
               compute_report_data(CONFIG, manifest, run / "classes.csv", read_outputs(run / "outputs.npz")))
    return DatasetInputs(
        manifest=root / "manifest.jsonl", metrics=run / "metrics.json", predictions=run / "predictions.json",
        classes=run / "classes.csv", outputs=run / "outputs.npz", report_data=root / "report_data.json",
        head_predictions={h: run / f"predictions_{h}.json" for h in ("visual", "audio", "multimodal")},
        train_logs={"full": root / "runs" / "full" / "train_log.csv"})


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    inputs = make_inputs(root)
    out = build_dataset_page(CONFIG, "toy", inputs, root / "report.html", copy_mb=50)
    return out, inputs


def page_json(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="wmmt-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1).replace("<\\/", "</"))


# --------------------------------------------------------------------------- without a browser


def test_scores_pack_into_one_byte_a_frame():
    x = np.array([0.0, 0.25, 0.5, 1.0, 0.999])
    assert np.allclose(unpack_scores(pack_scores(x)), x, atol=0.5 / 255)


def test_kinds_of_error_and_top1_iou():
    assert error_kind(0, 0) == "correct" and error_kind(2, 0) == "missed forgery"
    assert error_kind(0, 3) == "false alarm" and error_kind(1, 2) == "wrong modality"
    assert error_kind(1, 0, failed=True) == "extraction failed" and error_kind(None, 1) == "unlabelled"
    assert top1_iou([[0.2, 0, 1], [0.9, 1.0, 2.0]], [[1.5, 2.0]]) == pytest.approx(0.5)
    assert top1_iou([], [[0, 1]]) == 0.0 and top1_iou([[0.5, 0, 1]], []) is None


def test_markdown_tables_become_html():
    out = markdown_to_html("## T\n\n| a | b |\n|---|---|\n| `x` | **2** |\n\ntext ![f](figures/f.png)\n")
    assert "<h2>T</h2>" in out and "<td><code>x</code></td><td><b>2</b></td>" in out and "png" not in out


def test_page_is_self_contained_with_plotly_inline_once(page):
    path, _ = page
    text = path.read_text(encoding="utf-8")
    assert text.count("Plotly.newPlot") >= 3  # tables, confusion, training, t-SNE
    # plotly.js inline once, and nothing loaded from the network
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
    outside = re.sub(r"<script>/\*\*\n\* plotly\.js v.*?</script>", "", text, count=1, flags=re.S)
    assert len(outside) < len(text) / 2  # that was the bundle
    assert not re.search(r"<script[^>]+src=", outside) and not re.search(r"(src|href)=.https?:", outside)
    for heading in ("Temporal forgery localization", "Forgery type (four classes)", "Training curves",
                    "t-SNE before and after enhancement", "Test videos"):
        assert heading in text
    assert "ActionFormer" in text and "92.28" in text  # the paper's Table I rows beside ours


def test_page_records_every_test_video(page):
    path, _ = page
    data = page_json(path)
    by_id = {v["id"]: v for v in data["videos"]}
    assert set(by_id) == set(VIDEOS)
    assert by_id["both.mp4"]["error"] == "missed forgery" and by_id["visual.mp4"]["error"] == "wrong modality"
    assert by_id["gone.mp4"]["error"] == "false alarm" and by_id["real.mp4"]["error"] == "correct"
    assert by_id["audio.mp4"]["expert"] == "audio" and by_id["real.mp4"]["expert"] is None
    assert by_id["gone.mp4"]["missing"].startswith("video file not found") and by_id["gone.mp4"]["src"] is None
    audio = by_id["audio.mp4"]
    assert audio["truth"]["audio"] == [[1.0, 1.6]] and audio["truth"]["visual"] == []
    assert audio["pred_segments"] and set(audio["head_segments"]) == {"visual", "audio", "multimodal"}
    assert len(unpack_scores(audio["scores"]["visual"])) == audio["n"] == 50
    copied = path.parent / "report_videos"
    for v in data["videos"]:
        if v["copied"]:
            assert (path.parent / v["src"]).is_file()
    assert sorted(p.name for p in copied.glob("*.mp4")) == sorted(v for v, spec in VIDEOS.items() if spec[4])


def test_temporal_deviation_figure_is_the_reports(tmp_path):
    import pandas as pd
    import torch

    from evaluation import report_data as R
    from evaluation.viewer.dataset import deviation_html
    from evaluation.viewer.page import Figures
    from model.config import WMMTConfig
    from model.data import feature_stats
    from model.wmmt import WMMT
    from tests.helpers.features import InMemoryCache

    rng = np.random.default_rng(0)
    feats = {f"v{i}": (rng.standard_normal((30, 6)).astype(np.float32), rng.standard_normal((30, 4)).astype(np.float32))
             for i in range(8)}
    manifest = pd.DataFrame({"video_id": list(feats), "label": [0, 1, 2, 3] * 2, "split": ["train"] * 4 + ["test"] * 4})
    cache = InMemoryCache(feats)
    torch.manual_seed(0)
    model = WMMT(WMMTConfig(visual_dim=6, audio_dim=4, hidden=8, attn_dim=8)).eval()
    expected = R.temporal_deviation(cache, manifest, feature_stats(cache, ["v0", "v1", "v2", "v3"]), model=model)
    text = deviation_html(expected, Figures())
    ratio = R.deviation_ratios(expected)["features"]["visual"]
    assert "plotly.js v" in text and f"genuine {ratio:.2f}" in text
    assert text.count('"type":"box"') == 2 * 2 * 3  # genuine and forged, two sources, three tracks


def test_size_bound_links_instead_of_copying(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    out = build_dataset_page(CONFIG, "toy", inputs, tmp_path / "site" / "report.html", copy_mb=0)
    data = page_json(out)
    linked = [v for v in data["videos"] if v["src"]]
    assert linked and not any(v["copied"] for v in data["videos"])
    for v in linked:
        assert not v["src"].startswith("/") and (out.parent / v["src"]).resolve().is_file()


@pytest.mark.e2e
def test_cli_writes_the_page(page, tmp_path):
    _, inputs = page
    out = tmp_path / "report.html"
    args = ["--config", ROOT / "config" / "config.yaml", "--dataset", "synthetic", "--out", out,
            "--manifest", inputs.manifest, "--metrics", inputs.metrics, "--predictions", inputs.predictions,
            "--classes", inputs.classes, "--outputs", inputs.outputs, "--video-copy-mb", "1",
            "--train-log", f"full={inputs.train_logs['full']}", "--head-predictions",
            *(f"{h}={p}" for h, p in inputs.head_predictions.items())]
    result = subprocess.run([sys.executable, "-m", "evaluation.viewer", *map(str, args)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.is_file() and "report page" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "evaluation.viewer", *map(str, args[:-4]), "--train-log", "oops"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "expected NAME=PATH" in bad.stderr


def test_video_page_of_one_result(tmp_path):
    clip = make_clip(tmp_path / "mine.mp4", seconds=2.0, fps=FPS, size=(96, 64), faststart=True)
    result = _result("video", 2, 2, 2.0, [[0.4, 1.0]], seed=3)
    out = write_video_page(result, clip, tmp_path / "out")
    data = page_json(out)
    (rec,) = data["videos"]
    assert data["single"] and rec["pred"] == 2 and rec["expert"] == "visual" and rec["copied"]
    assert rec["pred_segments"] and (out.parent / rec["src"]).is_file()
    assert "plotly.js v" in out.read_text(encoding="utf-8")


@pytest.mark.e2e
def test_video_cli_writes_the_page_beside_the_prediction(tmp_path):
    """python -m evaluation.viewer --video V.mp4 --out DIR writes the page beside model.predict's prediction."""
    import torch

    from extractors.checkpoints import write_tsn_checkpoint, write_wav2vec2_folder
    from model.config import WMMTConfig
    from model.wmmt import WMMT

    clip = make_clip(tmp_path / "mine.mp4", seconds=1.2, fps=FPS, size=(64, 64))
    extraction = {"tsn_checkpoint": str(write_tsn_checkpoint(tmp_path / "tsn.pth", seed=0, plain_meta=True)),
                  "wav2vec2": str(write_wav2vec2_folder(tmp_path / "w2v", size="tiny", seed=0)),
                  "crop_size": 64, "fps": FPS}
    cfg = WMMTConfig(visual_dim=2048, audio_dim=32, hidden=16, attn_dim=32)
    torch.manual_seed(0)
    torch.save({"model": WMMT(cfg).state_dict(), "model_config": cfg.to_dict(), "data": {"extraction": extraction}},
               tmp_path / "best.pt")
    result = subprocess.run([sys.executable, "-m", "evaluation.viewer", "--checkpoint", str(tmp_path / "best.pt"),
                             "--video", str(clip), "--out", str(tmp_path / "out")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "prediction.json").read_text())
    (rec,) = page_json(tmp_path / "out" / "prediction.html")["videos"]
    assert rec["pred"] == record["forgery_type"] and rec["n"] == record["num_frames"]
    assert len(rec["pred_segments"]) == min(len(record["segments"]), 10) and rec["copied"]


# --------------------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set WMMT_CHROMIUM to its path)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def _open(browser, path: Path, fragment: str = ""):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # nothing is fetched from the network: every request stays on disk (or in the page)
    page.on("request", lambda r: errors.append(f"network request: {r.url}")
            if not r.url.startswith(("file:", "data:", "blob:")) else None)
    page.goto(path.resolve().as_uri() + fragment)
    page.wait_for_function("window.wmmtViewer && window.wmmtViewer.state.current !== null")
    return page, errors


@pytest.mark.e2e
def test_page_in_chromium(browser, page, tmp_path):
    path, _ = page
    tab, errors = _open(browser, path, "#video=audio.mp4")
    tab.wait_for_function("document.getElementById('video') && document.getElementById('video').readyState >= 1")
    assert tab.evaluate("document.getElementById('fas-plot').data.length") == 4
    # the video plays
    tab.evaluate("document.getElementById('video').muted = true; document.getElementById('video').play()")
    tab.wait_for_function("document.getElementById('video').currentTime > 0.1", timeout=15000)
    tab.evaluate("document.getElementById('video').pause()")
    # a click on a predicted segment seeks the video to its start
    seg = tab.locator("#strips .seg.pred").first
    start = float(seg.get_attribute("data-start"))
    seg.click()
    tab.wait_for_function(f"Math.abs(document.getElementById('video').currentTime - {start}) < 0.05")
    cursor = tab.evaluate("(() => { const s = document.getElementById('fas-plot').layout.shapes; "
                          "return s[s.length - 1].x0; })()")
    assert cursor == pytest.approx(start, abs=0.05)
    # a click on a true segment too
    truth = tab.locator("#strips .seg.truth").first
    truth.click()
    tab.wait_for_function(f"Math.abs(document.getElementById('video').currentTime - "
                          f"{float(truth.get_attribute('data-start'))}) < 0.05")
    tab.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    assert (tmp_path / "viewer.png").stat().st_size > 10000
    if os.environ.get("WMMT_VIEWER_SCREENSHOT"):
        shutil.copyfile(tmp_path / "viewer.png", os.environ["WMMT_VIEWER_SCREENSHOT"])
    assert errors == []


LISTED = "[...document.querySelectorAll('#video-list tbody tr')].map(r => r.dataset.id)"


@pytest.mark.e2e
def test_sort_and_filter_in_chromium(browser, page):
    path, _ = page
    tab, errors = _open(browser, path)
    order = tab.evaluate(LISTED)
    assert order[0] in ("both.mp4",)  # failures first: the missed forgery leads
    tab.click("#video-list th[data-key=p_fake]")
    by_score = tab.evaluate(LISTED)
    assert by_score != order and sorted(by_score) == sorted(order)
    scores = "[...document.querySelectorAll('#video-list tbody tr td:nth-child(4)')].map(c => +c.textContent)"
    assert tab.evaluate(scores) == sorted(tab.evaluate(scores), reverse=True)  # highest P(fake) first
    tab.click("#video-list th[data-key=p_fake]")
    assert tab.evaluate(scores) == sorted(tab.evaluate(scores))
    tab.select_option("#f-error", "false alarm")
    assert tab.evaluate(LISTED) == ["gone.mp4"]
    tab.select_option("#f-error", "")
    tab.select_option("#f-true", "3")
    assert tab.evaluate(LISTED) == ["audio.mp4"]
    assert errors == []


@pytest.mark.e2e
def test_missing_video_shows_a_message_in_chromium(browser, page, tmp_path):
    path, _ = page
    tab, errors = _open(browser, path, "#video=gone.mp4")
    assert tab.locator("#video-missing").inner_text().startswith("Video not available: video file not found")
    assert tab.locator("#player video").count() == 0
    assert tab.evaluate("document.getElementById('fas-plot').data.length") == 4  # the rest of the panel is there
    # a clip that vanished after the page was built (a linked one on another machine)
    inputs = make_inputs(tmp_path / "in")
    out = build_dataset_page(CONFIG, "toy", inputs, tmp_path / "site" / "report.html", copy_mb=0)
    Path(inputs.manifest.parent / "clips" / "audio.mp4").unlink()
    tab2, errors2 = _open(browser, out, "#video=audio.mp4")
    tab2.wait_for_selector("#video-missing", timeout=10000)
    assert "could not be loaded" in tab2.locator("#video-missing").inner_text()
    assert errors == []
    assert all("ERR_FILE_NOT_FOUND" in e for e in errors2)  # the browser's own report of the absent file
