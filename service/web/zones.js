/* The zone editor: pick a camera, see its latest frame (bare, GET .../snapshot.jpg?zones=false), draw polygons
   by clicking, drag or remove points, set each zone's id and kind, save with PUT /cameras/{id}/zones.
   Coordinates are fractions 0..1 of the frame (as in the configuration). The server validates everything
   (self-intersection, range, unique ids, rules naming zones) and its problems are shown inline, per zone.
   Uses the API helper of app.js (window.SW_APP); no framework, no build step. */
(function () {
  "use strict";
  var I = window.SW_I18N, APP = window.SW_APP;
  var HANDLE_PX = 9;                 // how close a click must be to a point to grab or close on it
  var BLANK = { w: 640, h: 360 };    // canvas size while the camera has no frame yet
  var OPTIONAL_NULLS = ["schedule", "min_dwell_s"];

  var ed = {
    cameras: [],
    cameraId: "",
    zones: [],        // working copy of the camera's zones (ZoneConfig objects)
    saved: "[]",      // JSON of the zones as the server has them (unsaved changes = different)
    selected: -1,
    drawing: null,    // points [x, y] of the polygon being drawn, or null
    drag: null,       // {zone, point} while a point is dragged
    bad: {},          // zone index -> true when the server refused it
    lastKind: "no_vending",
    blobUrl: null,
    frameTs: null,    // capture time of the shown frame (X-Frame-Timestamp)
    frameError: null, // why there is no frame (the server's message)
    loadToken: 0
  };

  function $(id) { return document.getElementById(id); }
  function t(key, params) { return APP.t(key, params); }
  function kindName(kind) { return I.zoneKindLabel(APP.lang(), kind); }
  function kindColor(kind) { return I.zoneKindColor(kind); }
  function round(v) { return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000; }

  // --- loading -----------------------------------------------------------------------------------------

  function open(cameras) {
    ed.cameras = cameras || [];
    var select = $("zc-camera"), chosen = ed.cameraId || select.value;
    select.innerHTML = "";
    ed.cameras.forEach(function (c) {
      var o = document.createElement("option");
      o.value = c.id; o.textContent = c.name ? c.id + " · " + c.name : c.id;
      select.appendChild(o);
    });
    if (chosen && ed.cameras.some(function (c) { return c.id === chosen; })) select.value = chosen;
    relabel();
    if (select.value) loadCamera(select.value); else render();
  }

  function loadCamera(id) {
    var token = ++ed.loadToken;
    setError("");
    ed.cameraId = id; ed.selected = -1; ed.drawing = null; ed.drag = null; ed.bad = {};
    return APP.api("/cameras/" + encodeURIComponent(id)).then(function (camera) {
      if (token !== ed.loadToken) return;
      setZones(camera.zones);
      loadFrame();
    }).catch(function (err) { if (token === ed.loadToken) setError(APP.describe(err)); });
  }

  function setZones(zones) {
    ed.zones = zones.map(clean);
    ed.saved = JSON.stringify(ed.zones);
    ed.selected = -1; ed.bad = {};
    render();
  }

  function clean(zone) {  // what the editor sends back: nulls of optional fields left out
    var z = {};
    Object.keys(zone).forEach(function (key) {
      if (zone[key] === null && OPTIONAL_NULLS.indexOf(key) >= 0) return;
      z[key] = key === "polygon" ? zone.polygon.map(function (p) { return [p[0], p[1]]; }) : zone[key];
    });
    return z;
  }

  function loadFrame() {
    var img = $("zc-img"), id = ed.cameraId, token = ed.loadToken;
    ed.frameTs = null; ed.frameError = null;
    frameText();
    var url = "/api/v1/cameras/" + encodeURIComponent(id) + "/snapshot.jpg?zones=false";
    fetch(url, { headers: { "Authorization": "Bearer " + APP.key() } })
      .then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return null; }).then(function (body) {
            throw new APP.ApiError(response.status, body && typeof body.detail === "string" ? body.detail
                                   : "HTTP " + response.status, body);
          });
        }
        var ts = response.headers.get("X-Frame-Timestamp");
        return response.blob().then(function (blob) { return { blob: blob, ts: ts }; });
      })
      .then(function (got) {
        if (token !== ed.loadToken) return;
        if (ed.blobUrl) URL.revokeObjectURL(ed.blobUrl);
        ed.blobUrl = URL.createObjectURL(got.blob);
        img.onload = function () {
          img.hidden = false;
          img.dataset.loaded = id;
          $("zc-stage").classList.remove("blank");
          render();
        };
        img.src = ed.blobUrl;
        ed.frameTs = got.ts;
        frameText();
      })
      .catch(function (err) {
        if (token !== ed.loadToken) return;
        img.hidden = true;
        img.removeAttribute("src");
        img.dataset.loaded = "";
        $("zc-stage").classList.add("blank");
        ed.frameError = err && err.message ? err.message : String(err);
        frameText();
        render();
      });
  }

  function frameText() {
    $("zc-frame-ts").textContent = ed.frameTs ? t("frameAt", { ts: new Date(ed.frameTs).toLocaleString(
      APP.lang() === "en" ? "en-GB" : "zh-CN", { hour12: false }) }) : "";
    $("zc-no-frame").hidden = !ed.frameError;
    $("zc-no-frame").textContent = ed.frameError ? t("noFrame", { msg: ed.frameError }) : "";
  }

  // --- geometry ----------------------------------------------------------------------------------------

  function framed() {
    var img = $("zc-img");
    return !img.hidden && img.naturalWidth > 0;
  }

  // The drawing layer's size: the frame as laid out now. Call only after the stage's own size is settled (see
  // render): measured while the stage still had the blank canvas's fixed 640x360, an 800x450 frame measured
  // 640x360 and every zone was drawn 20 % too small, anchored top-left, until the next render.
  function size() {
    var img = $("zc-img");
    if (framed() && img.clientWidth > 0) return { w: img.clientWidth, h: img.clientHeight };
    return BLANK;
  }

  function toNorm(event) {
    var rect = $("zc-canvas").getBoundingClientRect();
    return [round((event.clientX - rect.left) / rect.width), round((event.clientY - rect.top) / rect.height)];
  }

  function distPx(a, b) {
    var s = size();
    return Math.hypot((a[0] - b[0]) * s.w, (a[1] - b[1]) * s.h);
  }

  function inside(point, polygon) {
    var x = point[0], y = point[1], hit = false;
    for (var i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      var xi = polygon[i][0], yi = polygon[i][1], xj = polygon[j][0], yj = polygon[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }

  function nearestPoint(zoneIndex, point) {
    if (zoneIndex < 0) return -1;
    var best = -1, bestD = HANDLE_PX;
    ed.zones[zoneIndex].polygon.forEach(function (p, i) {
      var d = distPx(p, point);
      if (d <= bestD) { best = i; bestD = d; }
    });
    return best;
  }

  // --- drawing -----------------------------------------------------------------------------------------

  function render() {
    var canvas = $("zc-canvas"), stage = $("zc-stage");
    // The stage first (the frame's own size, or the blank canvas's), then the layer measured from the frame.
    if (framed()) {
      stage.style.width = ""; stage.style.height = "";
    } else {
      stage.style.width = BLANK.w + "px"; stage.style.height = BLANK.h + "px";
    }
    var s = size();
    canvas.width = s.w; canvas.height = s.h;
    canvas.style.width = s.w + "px"; canvas.style.height = s.h + "px";
    canvas.dataset.size = s.w + "x" + s.h;
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, s.w, s.h);
    ctx.font = "12px sans-serif";
    ed.zones.forEach(function (zone, i) { drawZone(ctx, zone, i, s); });
    if (ed.drawing) drawPath(ctx, s);
    canvas.dataset.zones = String(ed.zones.length);
    canvas.dataset.drawing = ed.drawing ? String(ed.drawing.length) : "";
    renderList();
    renderForm();
    renderButtons();
  }

  function path(ctx, points, s) {
    ctx.beginPath();
    points.forEach(function (p, i) {
      if (i === 0) ctx.moveTo(p[0] * s.w, p[1] * s.h); else ctx.lineTo(p[0] * s.w, p[1] * s.h);
    });
  }

  function drawZone(ctx, zone, i, s) {
    var color = kindColor(zone.kind), selected = i === ed.selected, bad = !!ed.bad[i];
    path(ctx, zone.polygon, s);
    ctx.closePath();
    ctx.globalAlpha = selected ? 0.25 : 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.lineWidth = selected ? 3 : 2;
    ctx.strokeStyle = bad ? "#ff00ff" : color;
    ctx.setLineDash(bad ? [6, 4] : []);
    ctx.stroke();
    ctx.setLineDash([]);
    var top = zone.polygon.reduce(function (a, p) { return [Math.min(a[0], p[0]), Math.min(a[1], p[1])]; }, [1, 1]);
    var label = zone.id + " · " + kindName(zone.kind), w = ctx.measureText(label).width + 6;
    var x = Math.min(top[0] * s.w, s.w - w), y = top[1] * s.h;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, w, 16);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x + 3, y + 12);
    if (selected) {
      zone.polygon.forEach(function (p) { handle(ctx, p, s, "#fff", color); });
    }
  }

  function drawPath(ctx, s) {
    var pts = ed.drawing, color = kindColor($("zc-kind").value || ed.lastKind);
    if (!pts.length) return;
    path(ctx, pts, s);
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    ctx.setLineDash([5, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
    pts.forEach(function (p, i) { handle(ctx, p, s, i === 0 ? "#ffeb3b" : "#fff", color); });
  }

  function handle(ctx, p, s, fill, stroke) {
    ctx.beginPath();
    ctx.arc(p[0] * s.w, p[1] * s.h, 5, 0, 2 * Math.PI);
    ctx.fillStyle = fill; ctx.fill();
    ctx.lineWidth = 2; ctx.strokeStyle = stroke; ctx.stroke();
  }

  function renderList() {
    var list = $("zc-list");
    list.innerHTML = "";
    ed.zones.forEach(function (zone, i) {
      var li = document.createElement("li");
      li.dataset.zoneId = zone.id;
      li.className = (i === ed.selected ? "current" : "") + (ed.bad[i] ? " bad" : "");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = kindColor(zone.kind);
      var title = document.createElement("span");
      title.textContent = zone.id;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = kindName(zone.kind) + (zone.name ? " · " + zone.name : "");
      li.appendChild(swatch); li.appendChild(title); li.appendChild(meta);
      li.addEventListener("click", function () { select(i); });
      list.appendChild(li);
    });
    $("zc-count").textContent = t("zoneCount", { n: ed.zones.length });
    $("zc-empty").hidden = ed.zones.length > 0;
  }

  function renderForm() {
    var zone = ed.zones[ed.selected];
    $("zc-form").hidden = !zone;
    if (!zone) return;
    if (document.activeElement !== $("zc-id")) $("zc-id").value = zone.id;
    if (document.activeElement !== $("zc-name")) $("zc-name").value = zone.name || "";
    $("zc-kind").value = zone.kind;
    $("zc-points").textContent = t("zonePoints", { n: zone.polygon.length });
  }

  function renderButtons() {
    var drawing = !!ed.drawing;
    $("zc-new").disabled = drawing || !ed.cameraId;
    $("zc-close").disabled = !drawing || ed.drawing.length < 3;
    $("zc-undo").disabled = !drawing || !ed.drawing.length;
    $("zc-cancel").disabled = !drawing;
    var dirty = JSON.stringify(ed.zones) !== ed.saved;
    $("zc-save").disabled = drawing || !ed.cameraId;
    $("zc-revert").disabled = !dirty || drawing;
    $("zc-save").dataset.dirty = dirty ? "1" : "";
    $("zc-hint").textContent = drawing ? t("hintDrawing", { n: ed.drawing.length }) : t("hintIdle");
  }

  function relabel() {
    var select = $("zc-kind"), picked = select.value;
    select.innerHTML = "";
    Object.keys(I.ZONE_KINDS).forEach(function (kind) {
      var o = document.createElement("option");
      o.value = kind; o.textContent = kindName(kind) + " (" + kind + ")";
      select.appendChild(o);
    });
    select.value = picked || ed.lastKind;
    frameText();
    if (!$("zones-view").hidden) render();
  }

  // --- editing -----------------------------------------------------------------------------------------

  function select(i) {
    if (ed.drawing) return;
    ed.selected = i;
    render();
  }

  function startDrawing() {
    if (!ed.cameraId) return;
    ed.drawing = [];
    ed.selected = -1;
    setNotice("");
    render();
    $("zc-canvas").focus();
  }

  function uniqueId() {
    var taken = {};
    ed.zones.forEach(function (z) { taken[z.id] = true; });
    for (var n = ed.zones.length + 1; ; n++) if (!taken["zone-" + n]) return "zone-" + n;
  }

  function closeDrawing() {
    if (!ed.drawing) return;
    if (ed.drawing.length < 3) { setError(t("needThree")); return; }
    setError("");
    var kind = $("zc-kind").value || ed.lastKind;
    ed.zones.push({ id: uniqueId(), kind: kind, name: "", polygon: ed.drawing });
    ed.drawing = null;
    ed.selected = ed.zones.length - 1;
    render();
    $("zc-id").focus();
    $("zc-id").select();
  }

  function onPointerDown(event) {
    if (!ed.cameraId || event.button !== 0) return;
    var p = toNorm(event);
    if (ed.drawing) {
      event.preventDefault();
      if (ed.drawing.length >= 3 && distPx(ed.drawing[0], p) <= HANDLE_PX) { closeDrawing(); return; }
      ed.drawing.push(p);
      setError("");
      render();
      return;
    }
    var point = nearestPoint(ed.selected, p);
    if (point >= 0) {
      event.preventDefault();
      ed.drag = { zone: ed.selected, point: point };
      $("zc-canvas").setPointerCapture(event.pointerId);
      return;
    }
    for (var i = ed.zones.length - 1; i >= 0; i--) {
      if (inside(p, ed.zones[i].polygon)) { select(i); return; }
    }
    select(-1);
  }

  function onPointerMove(event) {
    if (!ed.drag) return;
    ed.zones[ed.drag.zone].polygon[ed.drag.point] = toNorm(event);
    render();
  }

  function onPointerUp(event) {
    if (!ed.drag) return;
    ed.drag = null;
    try { $("zc-canvas").releasePointerCapture(event.pointerId); } catch (e) { /* already released */ }
    render();
  }

  function onDoubleClick(event) {
    if (ed.drawing || ed.selected < 0) return;
    var zone = ed.zones[ed.selected], point = nearestPoint(ed.selected, toNorm(event));
    if (point < 0) return;
    if (zone.polygon.length <= 3) { setError(t("needThree")); return; }
    zone.polygon.splice(point, 1);
    render();
  }

  function deleteSelected() {
    var zone = ed.zones[ed.selected];
    if (!zone) return;
    ed.zones.splice(ed.selected, 1);
    ed.selected = -1;
    ed.bad = {};
    setNotice(t("zoneDeleted", { id: zone.id }));
    render();
  }

  // --- saving ------------------------------------------------------------------------------------------

  function save() {
    if (!ed.cameraId || ed.drawing) return;
    var cameraId = ed.cameraId, body = { zones: ed.zones.map(clean) };
    setError(""); setNotice("");
    $("zc-save").disabled = true;
    APP.api("/cameras/" + encodeURIComponent(cameraId) + "/zones", { method: "PUT", json: body })
      .then(function (result) {
        if (cameraId !== ed.cameraId) return;
        setZones(result.zones);
        setNotice(t("zonesSaved", { n: result.zones.length, cam: cameraId }) + " " +
                  (result.persisted ? t("savedToFile") : t("savedInMemory")));
      })
      .catch(function (err) {
        ed.bad = {};
        var detail = err && err.body && err.body.detail;
        if (err instanceof APP.ApiError && Array.isArray(detail)) {
          var lines = detail.map(function (p) {
            var m = /^zones\[(\d+)\]/.exec(p.field || "");
            if (!m) return t("errorPrefix") + " (" + err.status + "): " + (p.field ? p.field + ": " : "") + p.msg;
            var i = Number(m[1]);
            ed.bad[i] = true;
            var zone = ed.zones[i];
            return t("zoneProblem", { id: zone ? zone.id : "#" + i, field: p.field, msg: p.msg });
          });
          var first = Object.keys(ed.bad)[0];
          if (first !== undefined) ed.selected = Number(first);
          setError(lines.join("\n"));
        } else {
          setError(APP.describe(err));
        }
        render();
      });
  }

  function setError(text) { $("zc-error").textContent = text; }
  function setNotice(text) { $("zc-notice").textContent = text; }

  // --- wiring ------------------------------------------------------------------------------------------

  function onKey(event) {
    if ($("zones-view").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (ed.drawing) {
      if (event.key === "Enter") { event.preventDefault(); closeDrawing(); }
      else if (event.key === "Escape") { event.preventDefault(); ed.drawing = null; setError(""); render(); }
      else if (event.key === "Backspace") { event.preventDefault(); ed.drawing.pop(); render(); }
    } else if (event.key === "Delete" && ed.selected >= 0) {
      event.preventDefault();
      deleteSelected();
    }
  }

  function init() {
    $("zc-camera").addEventListener("change", function () {
      var dirty = JSON.stringify(ed.zones) !== ed.saved || ed.drawing;
      loadCamera($("zc-camera").value).then(function () { if (dirty) setNotice(t("unsavedDropped")); });
    });
    $("zc-reload").addEventListener("click", function () { if (ed.cameraId) loadFrame(); });
    $("zc-new").addEventListener("click", startDrawing);
    $("zc-close").addEventListener("click", closeDrawing);
    $("zc-undo").addEventListener("click", function () { if (ed.drawing) { ed.drawing.pop(); render(); } });
    $("zc-cancel").addEventListener("click", function () { ed.drawing = null; setError(""); render(); });
    $("zc-revert").addEventListener("click", function () {
      ed.drawing = null; setError(""); setNotice("");
      setZones(JSON.parse(ed.saved));
    });
    $("zc-save").addEventListener("click", save);
    $("zc-delete").addEventListener("click", deleteSelected);
    $("zc-id").addEventListener("input", function () {
      var zone = ed.zones[ed.selected];
      if (zone) { zone.id = $("zc-id").value.trim(); render(); }
    });
    $("zc-name").addEventListener("input", function () {
      var zone = ed.zones[ed.selected];
      if (zone) { zone.name = $("zc-name").value; render(); }
    });
    $("zc-kind").addEventListener("change", function () {
      ed.lastKind = $("zc-kind").value;
      var zone = ed.zones[ed.selected];
      if (zone) zone.kind = ed.lastKind;
      render();
    });
    $("zc-form").addEventListener("submit", function (event) { event.preventDefault(); });
    var canvas = $("zc-canvas");
    canvas.addEventListener("pointerdown", onPointerDown);
    canvas.addEventListener("pointermove", onPointerMove);
    canvas.addEventListener("pointerup", onPointerUp);
    canvas.addEventListener("pointercancel", onPointerUp);
    canvas.addEventListener("dblclick", onDoubleClick);
    document.addEventListener("keydown", onKey);
    window.addEventListener("resize", function () { if (!$("zones-view").hidden) render(); });
    // Whenever the frame's laid-out size changes (loaded, the view shown after loading while hidden, the column
    // resized, fonts or the side panel settling), the drawing layer follows it.
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var img = $("zc-img"), canvas = $("zc-canvas");
        if ($("zones-view").hidden || !framed()) return;
        if (canvas.width !== img.clientWidth || canvas.height !== img.clientHeight) render();
      }).observe($("zc-img"));
    }
    relabel();
  }

  window.SW_ZONES = { open: open, relabel: relabel };
  init();
})();
