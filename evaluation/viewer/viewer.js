// The viewer's behaviour: the list of test videos (sort, filter), the selected video's player,
// its FAS plot (plotly figure built in Python: this only fills its traces and bands), the
// cursor that follows playback, and seeking on a click of a segment or of the plot.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("wmmt-data").textContent);
  var NAMES = DATA.class_names;
  var TEMPLATE = DATA.fas_template;
  var STYLES = DATA.fas_styles;
  var HEAD_ORDER = ["visual", "audio", "multimodal", "expert"];
  var MAX_ROWS = 2000;
  var state = { sortKey: "error", asc: true, current: null, shown: [] };
  var byId = {};
  DATA.videos.forEach(function (v) { byId[v.id] = v; });

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function copy(o) { return JSON.parse(JSON.stringify(o)); }
  function className(c) { return c === null || c === undefined ? "-" : NAMES[c]; }
  function fmt(x, d) { return x === null || x === undefined ? "-" : Number(x).toFixed(d); }

  function unpack(text) {
    var raw = atob(text || ""), out = new Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i) / 255;
    return out;
  }

  function expertScores(v) {
    if (v.scores.expert) return unpack(v.scores.expert);
    return v.expert && v.scores[v.expert] ? unpack(v.scores[v.expert]) : [];
  }

  function traces(v) {
    var times = [];
    for (var i = 0; i < v.n; i++) times.push(i / v.fps);
    return TEMPLATE.data.map(function (t, k) {
      var head = HEAD_ORDER[k], tr = copy(t);
      tr.x = times;
      tr.y = head === "expert" ? expertScores(v) : (v.scores[head] ? unpack(v.scores[head]) : []);
      if (head === "expert") tr.name = "chosen expert: " + (v.expert ? v.expert + " head" : "none (judged real)");
      return tr;
    });
  }

  function band(style, start, end, extra) {
    var s = copy(style);
    s.x0 = start; s.x1 = end;
    if (extra) Object.keys(extra).forEach(function (k) { s[k] = extra[k]; });
    return s;
  }

  function shapes(v, t) {
    var out = v.truth.all.map(function (seg) { return band(STYLES.truth, seg[0], seg[1]); });
    v.pred_segments.forEach(function (p) {
      out.push(band(STYLES.pred, p[1], p[2], { opacity: 0.35 + 0.65 * p[0] }));
    });
    out.push(copy(STYLES.threshold));
    out.push(band(STYLES.cursor, t, t));
    return out;
  }

  function renderPlot(v) {
    var div = $("fas-plot");
    if (!v.n) {
      Plotly.purge(div);
      div.textContent = v.failed ? "No features: this video could not be decoded, so it has no FAS."
        : "No per-frame scores for this video.";
      return;
    }
    div.textContent = "";
    var layout = copy(TEMPLATE.layout);
    layout.shapes = shapes(v, 0);
    layout.xaxis = layout.xaxis || {};
    layout.xaxis.range = [0, Math.max(v.duration || 0, v.n / v.fps)];
    Plotly.react(div, traces(v), layout, { displaylogo: false, responsive: true }).then(function () {
      if (!div._wmmtClick) {
        div.on("plotly_click", function (ev) { if (ev.points && ev.points.length) seek(ev.points[0].x); });
        div._wmmtClick = true;
      }
    });
  }

  function strip(label, segments, cls, duration, offset) {
    var row = el("div", "strip-row");
    row.appendChild(el("span", "strip-label", label));
    var bar = el("div", "strip");
    segments.forEach(function (seg) {
      var start = seg[offset], end = seg[offset + 1];
      var s = el("span", "seg " + cls);
      s.style.left = (100 * start / duration) + "%";
      s.style.width = Math.max(0.4, 100 * (end - start) / duration) + "%";
      s.dataset.start = start;
      s.dataset.end = end;
      s.title = label + ": " + start.toFixed(2) + "-" + end.toFixed(2) + " s" +
        (offset ? ", score " + seg[0].toFixed(3) : "") + " (click to play from its start)";
      if (offset) s.style.opacity = 0.35 + 0.65 * seg[0];
      s.addEventListener("click", function () { seek(start); });
      bar.appendChild(s);
    });
    bar.appendChild(el("div", "strip-cursor"));
    row.appendChild(bar);
    return row;
  }

  function renderStrips(v) {
    var box = $("strips"), d = Math.max(v.duration || 0, v.n && v.fps ? v.n / v.fps : 0) || 1;
    box.textContent = "";
    box.appendChild(strip("true: visual track", v.truth.visual, "truth", d, 0));
    box.appendChild(strip("true: audio track", v.truth.audio, "truth", d, 0));
    box.appendChild(strip("predicted (expert)", v.pred_segments, "pred", d, 1));
    Object.keys(v.head_segments).forEach(function (h) {
      box.appendChild(strip(h + " head", v.head_segments[h], "pred head", d, 1));
    });
  }

  function missing(text) {
    var m = el("div", "video-missing", text);
    m.id = "video-missing";
    return m;
  }

  function renderVideo(v) {
    var box = $("player");
    box.textContent = "";
    if (v.missing || !v.src) {
      box.appendChild(missing("Video not available: " + (v.missing || "no file") + "."));
      return;
    }
    var video = el("video");
    video.id = "video";
    video.controls = true;
    video.preload = "metadata";
    video.addEventListener("error", function () {
      box.textContent = "";
      box.appendChild(missing("Video not available: it could not be loaded from " + decodeURI(v.src) +
        (v.copied ? "." : " (linked, not copied beside the page: copy the dataset along, or raise the size bound).")));
    });
    video.addEventListener("timeupdate", function () { cursor(video.currentTime); });
    video.addEventListener("seeked", function () { cursor(video.currentTime); });
    video.src = v.src;
    box.appendChild(video);
  }

  function cursor(t) {
    var v = state.current;
    if (!v) return;
    var d = Math.max(v.duration || 0, v.n && v.fps ? v.n / v.fps : 0) || 1;
    document.querySelectorAll(".strip-cursor").forEach(function (c) { c.style.left = (100 * t / d) + "%"; });
    var div = $("fas-plot");
    if (v.n && div.layout && div.layout.shapes) {
      var k = div.layout.shapes.length - 1, upd = {};
      upd["shapes[" + k + "].x0"] = t;
      upd["shapes[" + k + "].x1"] = t;
      Plotly.relayout(div, upd);
    }
    $("clock").textContent = t.toFixed(2) + " s";
  }

  function seek(t) {
    var video = $("video");
    if (video) video.currentTime = t;
    cursor(t);
  }

  function renderInfo(v) {
    $("video-title").textContent = v.id;
    var probs = v.probs.map(function (p, i) { return NAMES[i] + " " + p.toFixed(3); }).join(", ");
    $("video-info").textContent = "true: " + className(v.true) + " | predicted: " + className(v.pred) +
      " | " + v.error + " | expert: " + (v.expert || "none") + " | P(fake) " + fmt(v.p_fake, 3) +
      " | top-1 IoU " + fmt(v.iou, 2) + " | class probabilities: " + probs;
  }

  function select(id) {
    var v = byId[id];
    if (!v) return;
    state.current = v;
    renderInfo(v);
    renderVideo(v);
    renderStrips(v);
    renderPlot(v);
    cursor(0);
    document.querySelectorAll("#video-list tbody tr").forEach(function (tr) {
      tr.classList.toggle("selected", tr.dataset.id === id);
    });
    if (!DATA.single && history.replaceState) history.replaceState(null, "", "#video=" + encodeURIComponent(id));
  }

  function sortValue(v, key) {
    if (key === "true" || key === "pred") return v[key] === null ? -1 : v[key];
    if (key === "error") return DATA.error_order.indexOf(v.error);
    var x = v[key];
    return x === null || x === undefined ? -Infinity : x;
  }

  function filtered() {
    var t = $("f-true").value, p = $("f-pred").value, e = $("f-error").value;
    var lo = parseFloat($("f-min").value), hi = parseFloat($("f-max").value);
    var q = $("f-text").value.toLowerCase();
    return DATA.videos.filter(function (v) {
      return (t === "" || String(v.true) === t) && (p === "" || String(v.pred) === p) &&
        (e === "" || (e === "errors" ? v.error !== "correct" : v.error === e)) &&
        (isNaN(lo) || v.p_fake >= lo) && (isNaN(hi) || v.p_fake <= hi) &&
        (q === "" || v.id.toLowerCase().indexOf(q) >= 0);
    });
  }

  function renderList() {
    var rows = filtered(), key = state.sortKey, sign = state.asc ? 1 : -1;
    rows.sort(function (a, b) {
      var x = sortValue(a, key), y = sortValue(b, key);
      if (x < y) return -sign;
      if (x > y) return sign;
      return a.id < b.id ? -1 : (a.id > b.id ? 1 : 0);
    });
    state.shown = rows.map(function (v) { return v.id; });
    var body = document.querySelector("#video-list tbody");
    body.textContent = "";
    rows.slice(0, MAX_ROWS).forEach(function (v) {
      var tr = el("tr", v.error === "correct" ? "" : "wrong");
      tr.dataset.id = v.id;
      [v.id, className(v.true), className(v.pred), fmt(v.p_fake, 3), fmt(v.iou, 2), v.error,
       v.copied ? "copied" : (v.missing ? "missing" : "linked")].forEach(function (c) { tr.appendChild(el("td", "", c)); });
      tr.addEventListener("click", function () { select(v.id); });
      if (state.current && state.current.id === v.id) tr.classList.add("selected");
      body.appendChild(tr);
    });
    $("list-count").textContent = rows.length + " of " + DATA.videos.length + " videos" +
      (rows.length > MAX_ROWS ? " (first " + MAX_ROWS + " listed: narrow the filters)" : "");
    document.querySelectorAll("#video-list th").forEach(function (th) {
      th.classList.toggle("sorted", th.dataset.key === key);
      th.dataset.dir = th.dataset.key === key ? (state.asc ? "asc" : "desc") : "";
    });
  }

  function step(delta) {
    if (!state.shown.length) return;
    var i = state.current ? state.shown.indexOf(state.current.id) : -1;
    select(state.shown[Math.min(state.shown.length - 1, Math.max(0, i + delta))]);
  }

  function initList() {
    document.querySelectorAll("#video-list th").forEach(function (th) {
      th.addEventListener("click", function () {
        if (state.sortKey === th.dataset.key) state.asc = !state.asc;
        else { state.sortKey = th.dataset.key; state.asc = th.dataset.key === "id" || th.dataset.key === "error"; }
        renderList();
      });
    });
    ["f-true", "f-pred", "f-error", "f-min", "f-max", "f-text"].forEach(function (id) {
      $(id).addEventListener("input", renderList);
    });
    $("next").addEventListener("click", function () { step(1); });
    $("prev").addEventListener("click", function () { step(-1); });
    renderList();
  }

  function start() {
    if (!DATA.single) initList();
    var wanted = decodeURIComponent((location.hash.match(/video=([^&]+)/) || [])[1] || "");
    var first = byId[wanted] ? wanted : (DATA.single ? DATA.videos[0].id : state.shown[0]);
    if (first) select(first);
  }

  window.wmmtViewer = { select: select, seek: seek, state: state, renderList: renderList };
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();
