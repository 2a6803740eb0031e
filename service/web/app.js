/* The review page: API key once per tab (typed in, or `#key=` in the address), the queue of pending cases, one
   case at a time, keyboard shortcuts. Talks to /api/v1 with the key in the Authorization header; evidence images
   are fetched with the key and shown through blob URLs (an <img> cannot send headers). No framework, no build
   step. */
(function () {
  "use strict";
  var I = window.SW_I18N;
  var API = "/api/v1";
  var KEY_STORE = "streetwatch.apiKey";   // sessionStorage: gone when the tab closes
  var LANG_STORE = "streetwatch.lang";    // localStorage: remembered
  var PAGE = 200;

  // A key in the address (`/#key=...`, as `streetwatch demo` prints it; a fragment never reaches the server's
  // access log; `/?key=...` still works) signs in like the form does: it is kept for this tab, then removed from
  // the address bar and the history so it is not bookmarked or shared.
  function keyFromAddress() {
    var params = new URLSearchParams(location.search);
    var hash = /^#key=([^&]*)$/.exec(location.hash);
    var key = hash ? decodeURIComponent(hash[1]).trim() : (params.get("key") || "").trim();
    if (!params.has("key") && !hash) return;
    params.delete("key");
    var query = params.toString();
    history.replaceState(history.state, "", location.pathname + (query ? "?" + query : "") +
                         (hash ? "" : location.hash));
    if (key) sessionStorage.setItem(KEY_STORE, key);
  }
  keyFromAddress();

  // A case named in the address (`/review?case=42` or `/review#case=42`, as a flight report links its findings'
  // cases) is opened once the queue has loaded, whether or not it is in the queue; the address is then cleaned.
  function caseFromAddress() {
    var params = new URLSearchParams(location.search);
    var hash = /^#case=(\d+)$/.exec(location.hash);
    var value = params.get("case") || (hash ? hash[1] : "");
    if (!params.has("case") && !hash) return null;
    params.delete("case");
    var query = params.toString();
    var rest = (query ? "?" + query : "") + (hash ? "" : location.hash);
    history.replaceState(history.state, "", location.pathname + rest);
    return /^\d+$/.test(value) ? Number(value) : null;
  }

  var state = {
    key: sessionStorage.getItem(KEY_STORE) || "",
    role: "",         // of the key (GET /me): admin, reviewer or pilot (pilots see the flights view only)
    view: "",         // the view shown: review, history, zones or flights
    openCase: caseFromAddress(),
    lang: localStorage.getItem(LANG_STORE) === "en" ? "en" : "zh",
    cameras: [],
    cases: [],        // the pending queue, newest first
    index: 0,         // current case in `cases`
    current: null,    // full CasePublic of the current case
    busy: false,
    blobUrls: [],
    shown: null,      // the evidence row whose image is shown (its boxes are drawn)
    clean: false,     // show the original frame (no boxes burnt in) with the page's own drawing
    loadToken: 0
  };
  var VIEWS = ["review", "history", "zones", "flights"];

  function $(id) { return document.getElementById(id); }
  function t(key, params) { return I.t(state.lang, key, params); }
  function kindText(kind, code) { return I.kindLabel(state.lang, kind, code); }

  // --- API ---------------------------------------------------------------------------------------------

  function errorText(status, body) {
    var detail = body && body.detail;
    if (Array.isArray(detail)) {
      return detail.map(function (p) { return (p.field ? p.field + ": " : "") + p.msg; }).join("\n");
    }
    if (typeof detail === "string") return detail;
    return "HTTP " + status;
  }

  function ApiError(status, message, body) { this.status = status; this.message = message; this.body = body; }

  function api(path, options) {
    options = options || {};
    var headers = { "Authorization": "Bearer " + state.key, "Accept": "application/json" };
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    return fetch(API + path, {
      method: options.method || "GET", headers: headers,
      body: options.json !== undefined ? JSON.stringify(options.json) : undefined
    }).then(function (response) {
      if (options.blob && response.ok) return response.blob();
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) {
          var err = new ApiError(response.status, errorText(response.status, body), body);
          if (response.status === 401) signOut(err.message);
          throw err;
        }
        return body;
      });
    });
  }

  function describe(err) {
    if (err instanceof ApiError) return t("errorPrefix") + " (" + err.status + "): " + err.message;
    return t("errorPrefix") + ": " + (err && err.message ? err.message : String(err));
  }

  // --- language ----------------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
    document.title = t("title") + " · streetwatch";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    $("lang-toggle").textContent = t("langToggle");
    fillKindSelects();
    renderQueue();
    if (state.current) renderCase(state.current, false);
    if (window.SW_ZONES) window.SW_ZONES.relabel();
    if (window.SW_FLIGHTS) window.SW_FLIGHTS.relabel();
    if (window.SW_HISTORY) window.SW_HISTORY.relabel();
  }

  // --- views: the review queue, the zone editor (zones.js) ------------------------------------------------

  // The view an address names: `#zones`, `#flights`, `#history`; anything else (none, `#review`) the queue.
  function viewOfHash(hash) {
    var name = (hash || "").replace(/^#/, "");
    return VIEWS.indexOf(name) >= 0 ? name : "review";
  }

  function showView(name) {
    if (state.role === "pilot") name = "flights";  // a pilot key reads nothing else
    if (name === "zones" && !window.SW_ZONES) name = "review";
    if (name === "history" && !window.SW_HISTORY) name = "review";
    if (VIEWS.indexOf(name) < 0) name = "review";
    var zones = name === "zones", flights = name === "flights", past = name === "history";
    state.view = name;
    $("review").hidden = name !== "review";
    $("history-view").hidden = !past;
    $("zones-view").hidden = !zones;
    $("flights-view").hidden = !flights;
    VIEWS.forEach(function (v) { $("nav-" + v).classList.toggle("active", v === name); });
    if (!flights && window.SW_FLIGHTS) window.SW_FLIGHTS.close();
    if (name !== "review") {
      toggleHelp(false);
      if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
      if (zones) window.SW_ZONES.open(state.cameras);
      else if (past) window.SW_HISTORY.open();
      else if (window.SW_FLIGHTS) window.SW_FLIGHTS.open();  // else flights.js opens itself when it loads
    } else {
      if (location.hash) history.replaceState(null, "", location.pathname + location.search);
      drawBoxes();  // the evidence is laid out again once the view is visible
    }
  }

  function fillKindSelects() {
    var filter = $("f-kind"), chosen = filter.value;
    filter.innerHTML = "";
    filter.appendChild(option("", t("all")));
    var select = $("class-select"), picked = select.value;
    select.innerHTML = "";
    Object.keys(I.KINDS).forEach(function (kind) {
      filter.appendChild(option(kind, kindText(kind)));
      select.appendChild(option(kind, kindText(kind)));
    });
    filter.value = chosen;
    if (picked) select.value = picked;
    var cam = $("f-camera"), camChosen = cam.value;
    cam.innerHTML = "";
    cam.appendChild(option("", t("all")));
    state.cameras.forEach(function (c) { cam.appendChild(option(c.id, c.name ? c.id + " · " + c.name : c.id)); });
    cam.value = camChosen;
  }

  function option(value, label) {
    var o = document.createElement("option");
    o.value = value; o.textContent = label;
    return o;
  }

  // --- formatting --------------------------------------------------------------------------------------

  function localTime(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString(state.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
  }

  function dwell(seconds) {
    var s = Math.round(seconds || 0);
    if (s < 60) return t("seconds", { s: s });
    if (s < 3600) return t("minutes", { m: Math.floor(s / 60), s: s % 60 });
    return t("hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function cameraName(id) {
    var c = state.cameras.find(function (x) { return x.id === id; });
    return c && c.name ? id + " · " + c.name : id;
  }

  // The zone of a case as the camera's configuration has it (null for a flight case or a zone since removed).
  function zoneOf(c) {
    var cam = c.camera_id ? state.cameras.find(function (x) { return x.id === c.camera_id; }) : null;
    return cam && cam.zones ? cam.zones.find(function (z) { return z.id === c.zone_id; }) || null : null;
  }

  // Reviewers know a zone by its name ("夜市疏导点"), not its id; the id stays beside it for the configuration.
  function zoneName(c) {
    var z = zoneOf(c);
    if (!z) return c.zone_id;
    var kind = I.zoneKindLabel(state.lang, z.kind);
    return z.name ? z.name + " (" + z.id + ") · " + kind : z.id + " · " + kind;
  }

  function kindColor(kind) {
    var k = I.KINDS[kind];
    return k && k.color ? k.color : "#ffcc00";
  }

  // Where a case comes from: its camera, or (a case with no camera) the drone flight that found it.
  function originName(c) {
    return c.camera_id ? cameraName(c.camera_id) : t("flight") + " " + c.flight_id;
  }

  // --- sign in / out -----------------------------------------------------------------------------------

  function showLogin(message) {
    $("review").hidden = true;
    $("history-view").hidden = true;
    $("zones-view").hidden = true;
    $("flights-view").hidden = true;
    if (window.SW_FLIGHTS) window.SW_FLIGHTS.close();
    $("nav").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("api-key").focus();
  }

  function signOut(message) {
    state.key = "";
    state.role = "";
    sessionStorage.removeItem(KEY_STORE);
    state.cases = []; state.current = null;
    showLogin(message ? t("badKey", { msg: message }) : "");
  }

  function start() {
    $("login-error").textContent = "";
    return api("/me").then(function (me) {
      state.role = me.role;
      // A pilot key reads no cameras, kinds or cases: it only gets the flights view.
      return me.role === "pilot" ? [{ data: [] }, null] : Promise.all([api("/cameras"), api("/kinds")]);
    }).then(function (bodies) {
      state.cameras = bodies[0].data;
      if (bodies[1]) I.setKinds(bodies[1]);
      $("login").hidden = true;
      $("sign-out").hidden = false;
      $("nav").hidden = false;
      $("nav-review").hidden = $("nav-zones").hidden = $("nav-history").hidden = state.role === "pilot";
      fillKindSelects();
      showView(state.openCase ? "review" : viewOfHash(location.hash));
      return state.role === "pilot" ? null : loadQueue();
    }).catch(function (err) {
      if (err instanceof ApiError && err.status !== 401) {
        sessionStorage.removeItem(KEY_STORE);
        showLogin(t("badKey", { msg: err.message }));
      } else if (!(err instanceof ApiError)) {
        showLogin(describe(err));
      }
    });
  }

  // --- queue -------------------------------------------------------------------------------------------

  function filterQuery() {
    var params = new URLSearchParams({ status: "pending", limit: String(PAGE) });
    if ($("f-camera").value) params.set("camera_id", $("f-camera").value);
    if ($("f-kind").value) params.set("kind", $("f-kind").value);
    [["f-from", "from"], ["f-to", "to"]].forEach(function (pair) {
      var value = $(pair[0]).value;  // local wall time, sent as UTC with its zone
      if (value) params.set(pair[1], new Date(value).toISOString());
    });
    return params.toString();
  }

  function loadQueue(keepId) {
    $("case-error").textContent = "";
    var wanted = state.openCase;  // a case named in the address: shown even when it is not in the queue
    state.openCase = null;
    return api("/cases?" + filterQuery()).then(function (body) {
      state.cases = body.data;
      var target = wanted || keepId;
      var at = target ? state.cases.findIndex(function (c) { return c.id === target; }) : 0;
      if (wanted && at < 0) {
        return api("/cases/" + wanted).then(function (c) {
          state.cases.unshift(c);
          state.index = 0;
          $("notice").textContent = t("openedCase", { id: c.id });
          renderQueue();
          return showCurrent();
        });
      }
      state.index = at < 0 ? 0 : at;
      renderQueue();
      return showCurrent();
    }).catch(function (err) { $("case-error").textContent = describe(err); });
  }

  function renderQueue() {
    var list = $("queue-list");
    list.innerHTML = "";
    state.cases.forEach(function (c, i) {
      var li = document.createElement("li");
      li.dataset.caseId = String(c.id);
      if (i === state.index) li.className = "current";
      var title = document.createElement("span");
      title.textContent = "#" + c.id + " " + kindText(c.corrected_kind || c.kind, c.category_code);
      var meta = document.createElement("span");
      meta.className = "meta";
      var z = zoneOf(c);
      meta.textContent = originName(c) + (z && z.name ? " · " + z.name : "") + " · " + localTime(c.last_seen);
      li.appendChild(title); li.appendChild(meta);
      li.addEventListener("click", function () { go(i - state.index); });
      list.appendChild(li);
    });
    $("queue-count").textContent = t("queueCount", { n: state.cases.length });
    $("queue-empty").hidden = state.cases.length > 0;
  }

  function showCurrent() {
    if (!state.cases.length) {
      state.current = null;
      $("case-body").hidden = true;
      return Promise.resolve();
    }
    state.index = Math.max(0, Math.min(state.index, state.cases.length - 1));
    renderQueue();
    var id = state.cases[state.index].id, token = ++state.loadToken;
    return api("/cases/" + id).then(function (c) {
      if (token !== state.loadToken) return;
      state.current = c;
      renderCase(c, true);
    }).catch(function (err) { $("case-error").textContent = describe(err); });
  }

  function go(delta) {
    if (!state.cases.length) return;
    var next = Math.max(0, Math.min(state.index + delta, state.cases.length - 1));
    if (next === state.index && state.current) return;
    state.index = next;
    closeReject();
    $("case-error").textContent = "";
    $("notice").textContent = "";
    showCurrent();
  }

  // --- one case ----------------------------------------------------------------------------------------

  function renderCase(c, reloadImages) {
    $("case-body").hidden = false;
    $("case-body").dataset.caseId = String(c.id);
    $("case-title").textContent = t("caseTitle", { id: c.id });
    $("case-position").textContent = t("position", { i: state.index + 1, n: state.cases.length });
    var kind = c.corrected_kind || c.kind;
    var rows = [
      [t("kind"), kindText(kind, c.category_code)],
      c.camera_id ? [t("camera"), cameraName(c.camera_id)] : [t("flight"), c.flight_id],
      [t("zone"), zoneName(c)],
      [t("firstSeen"), localTime(c.first_seen)],
      [t("lastSeen"), localTime(c.last_seen)],
      [t("dwell"), dwell(c.dwell_s)],
      [t("score"), (c.score || 0).toFixed(2)],
      [t("category"), c.category_code || "—"],
      [t("address"), [c.address, c.grid_code].filter(Boolean).join(" · ") || "—"],
      [t("status"), t("st_" + c.status)]
    ];
    var dl = $("case-fields");
    dl.innerHTML = "";
    rows.forEach(function (row) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = row[0]; dd.textContent = row[1];
      dl.appendChild(dt); dl.appendChild(dd);
    });
    $("class-select").value = kind;
    if (reloadImages) loadImages(c); else drawBoxes();
    renderLegend(c);
  }

  function releaseBlobs() {
    state.blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    state.blobUrls = [];
  }

  // The latest image of a kind (a case collects evidence as it goes on; the newest frame is the one shown).
  function latest(c, kind) {
    var rows = c.evidence.filter(function (e) { return e.kind === kind; });
    return rows.length ? rows[rows.length - 1] : null;
  }

  function loadImages(c) {
    releaseBlobs();
    var img = $("evidence-img"), crop = $("crop-img");
    img.removeAttribute("src"); crop.removeAttribute("src");
    img.hidden = true; $("crop-figure").hidden = true;
    clearCanvas();
    var annotated = latest(c, "annotated"), original = latest(c, "original");
    $("clean-toggle").hidden = !(annotated && original);
    $("show-clean").checked = state.clean;
    var main = (state.clean ? original || annotated : annotated || original);
    var cropEv = latest(c, "crop");
    state.shown = main;
    $("no-evidence").hidden = !!main;
    var token = state.loadToken;
    function fetchInto(ev, el, onShown) {
      api("/cases/" + c.id + "/evidence/" + ev.id, { blob: true }).then(function (blob) {
        if (token !== state.loadToken) return;
        var url = URL.createObjectURL(blob);
        state.blobUrls.push(url);
        el.onload = onShown;
        el.src = url;
      }).catch(function (err) { $("case-error").textContent = describe(err); });
    }
    if (main) fetchInto(main, img, function () { img.hidden = false; img.dataset.loaded = String(c.id); drawBoxes(); });
    if (cropEv) fetchInto(cropEv, crop, function () { $("crop-figure").hidden = false; drawBoxes(); });
    loadTimelapse(c, token);
  }

  // The strip and the clip of the dwell (the latest of each: a case gets new ones as the violation goes on). A clip
  // that cannot be had (e.g. refused while privacy blurring is on) says why in its caption, not as a page error.
  function loadTimelapse(c, token) {
    var strip = $("strip-img"), video = $("clip-video"), note = $("clip-note");
    var stripEv = latest(c, "strip"), clipEv = latest(c, "clip");
    strip.removeAttribute("src"); delete strip.dataset.loaded;
    video.removeAttribute("src"); delete video.dataset.loaded; video.load();
    note.textContent = "";
    $("strip-figure").hidden = true; $("clip-figure").hidden = true;
    $("timelapse").hidden = !(stripEv || clipEv);
    function fetchBlob(ev) {
      return api("/cases/" + c.id + "/evidence/" + ev.id, { blob: true }).then(function (blob) {
        if (token !== state.loadToken) return null;
        var url = URL.createObjectURL(blob);
        state.blobUrls.push(url);
        return url;
      });
    }
    if (stripEv) {
      fetchBlob(stripEv).then(function (url) {
        if (!url) return;
        strip.onload = function () { $("strip-figure").hidden = false; strip.dataset.loaded = String(c.id); };
        strip.src = url;
      }).catch(function (err) { $("case-error").textContent = describe(err); });
    }
    if (clipEv) {
      fetchBlob(clipEv).then(function (url) {
        if (!url) return;
        video.onloadedmetadata = function () { video.dataset.loaded = String(c.id); };
        video.src = url;
        $("clip-figure").hidden = false;
      }).catch(function (err) {
        if (token !== state.loadToken) return;
        note.textContent = t("clipUnavailable") + ": " + describe(err);
        $("clip-figure").hidden = false;
      });
    }
  }

  function clearCanvas() {
    var canvas = $("overlay");
    canvas.width = 0; canvas.height = 0;
    canvas.style.width = "0px"; canvas.style.height = "0px";
  }

  // The evidence frame as large as the column allows (small frames enlarged; before, it stopped at 800 px on
  // any screen), beside the crop, and never so tall that the legend and the action buttons below it leave the
  // window.
  function fitEvidence() {
    var img = $("evidence-img");
    if (img.hidden || !img.naturalWidth) return;
    var crop = $("crop-figure");
    var room = $("case-body").clientWidth - (crop.hidden ? 0 : crop.offsetWidth + 17);  // the crop, the gap
    var top = img.parentNode.getBoundingClientRect().top + window.scrollY;
    var tall = Math.max(240, window.innerHeight - top - 120);  // the legend, the toggle, the action buttons
    img.style.width = Math.max(160, Math.floor(Math.min(room, tall * img.naturalWidth / img.naturalHeight))) + "px";
  }

  // The boxes of the shown frame: its evidence row's (the frame they were seen in); the case's own boxes only
  // for rows written before evidence kept them (they follow later events and may sit elsewhere on this frame).
  function shownBoxes(c) {
    var ev = state.shown;
    if (ev && Array.isArray(ev.boxes)) {
      return ev.boxes.map(function (b) { return { xyxy: b.xyxy, track: b.track_id, cls: b.class_name }; });
    }
    return (c.boxes || []).map(function (b, i) {
      return { xyxy: b, track: c.track_ids ? c.track_ids[i] : undefined, cls: c.class_name };
    });
  }

  // Where each box's label goes so that no two labels overlap (boxes of bikes parked side by side overlap, and
  // labels drawn at each box's corner covered each other). Tries above, below and inside each box's corners,
  // then stacked further up, down and beside it; takes the first free place, else the least covered one. Pure:
  // canvas pixels in and out, labels kept inside the canvas.
  function placeLabels(boxes, sizes, width, height) {
    var placed = [];
    function area(a, b) {
      var w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      var h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      return w > 0 && h > 0 ? w * h : 0;
    }
    return boxes.map(function (b, i) {
      var s = sizes[i], left = b.x, right = b.x + b.w - s.w, top = b.y - s.h, below = b.y + b.h;
      var spots = [[left, top], [right, top], [left, below], [right, below], [left, b.y], [right, b.y + b.h - s.h]];
      for (var k = 1; k <= 8; k++) {
        spots.push([left, b.y - (k + 1) * s.h], [left, below + k * s.h], [b.x + b.w + 2, b.y + (k - 1) * s.h],
                   [b.x - s.w - 2, b.y + (k - 1) * s.h]);
      }
      var best = null, bestCover = Infinity;
      spots.forEach(function (p) {
        if (bestCover === 0) return;
        var r = { x: Math.max(0, Math.min(p[0], width - s.w)), y: Math.max(0, Math.min(p[1], height - s.h)),
                  w: s.w, h: s.h };
        var cover = placed.reduce(function (sum, q) { return sum + area(r, q); }, 0);
        if (cover < bestCover) { best = r; bestCover = cover; }
      });
      placed.push(best);
      return best;
    });
  }

  function drawBoxes() {
    var img = $("evidence-img"), canvas = $("overlay"), c = state.current;
    if (!c || img.hidden || !img.naturalWidth || $("review").hidden) { clearCanvas(); return; }
    fitEvidence();
    var w = img.clientWidth, h = img.clientHeight, sx = w / img.naturalWidth, sy = h / img.naturalHeight;
    var dpr = window.devicePixelRatio || 1;  // a sharp layer on high-density screens
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    canvas.style.width = w + "px"; canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var kind = c.corrected_kind || c.kind, color = kindColor(kind);
    if (state.clean) drawZone(ctx, c, w, h);
    var boxes = shownBoxes(c).map(function (b) {  // frame pixels x1, y1, x2, y2 → layer pixels
      return { x: b.xyxy[0] * sx, y: b.xyxy[1] * sy, w: (b.xyxy[2] - b.xyxy[0]) * sx, h: (b.xyxy[3] - b.xyxy[1]) * sy,
               text: [b.track !== undefined && b.track !== null ? "#" + b.track : "", b.cls || ""].join(" ").trim() };
    });
    ctx.lineWidth = 3;
    ctx.strokeStyle = color;
    boxes.forEach(function (b) { ctx.strokeRect(b.x, b.y, b.w, b.h); });
    ctx.font = "bold 13px system-ui, sans-serif";
    var sizes = boxes.map(function (b) { return { w: ctx.measureText(b.text).width + 8, h: 18 }; });
    var spots = placeLabels(boxes, sizes, w, h);
    boxes.forEach(function (b, i) {
      if (!b.text) return;
      var r = spots[i];
      ctx.fillStyle = color;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.fillStyle = inkOn(color);
      ctx.fillText(b.text, r.x + 4, r.y + 13);
    });
    canvas.dataset.boxes = String(boxes.length);
    canvas.dataset.labels = JSON.stringify(spots.map(function (r) { return [r.x, r.y, r.w, r.h]; }));
  }

  // The case's zone drawn on the clean frame, with its name (the annotated frame has the zones burnt in).
  function drawZone(ctx, c, w, h) {
    var z = zoneOf(c);
    if (!z || !z.polygon || !z.polygon.length) return;
    var color = I.zoneKindColor(z.kind);
    ctx.beginPath();
    z.polygon.forEach(function (p, i) { if (i) ctx.lineTo(p[0] * w, p[1] * h); else ctx.moveTo(p[0] * w, p[1] * h); });
    ctx.closePath();
    ctx.globalAlpha = 0.12; ctx.fillStyle = color; ctx.fill(); ctx.globalAlpha = 1;
    ctx.lineWidth = 2; ctx.strokeStyle = color; ctx.stroke();
  }

  // Black or white text, whichever reads better on `hex` (relative luminance, as WCAG weighs it).
  function inkOn(hex) {
    var n = parseInt(hex.slice(1), 16), r = (n >> 16) & 255, g = (n >> 8) & 255, b = n & 255;
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 150 ? "#111" : "#fff";
  }

  // What the colours mean: this case's boxes (its kind's colour, thick), the other detections burnt into the
  // annotated frame (thin, coloured by class: not part of the case, e.g. properly parked bikes), the zone.
  function renderLegend(c) {
    var list = $("legend"), kind = c.corrected_kind || c.kind, z = zoneOf(c);
    list.innerHTML = "";
    function item(cls, color, text, key) {
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "box " + cls;
      if (color) sw.style.borderColor = color;
      li.dataset.legend = key;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(text));
      list.appendChild(li);
    }
    item("", kindColor(kind), t("legendCase", { kind: kindText(kind) }), "case");
    if (!state.clean) item("thin", null, t("legendOther"), "other");
    if (z) {
      item("zone", I.zoneKindColor(z.kind),
           t("legendZone", { zone: z.name || z.id, kind: I.zoneKindLabel(state.lang, z.kind) }), "zone");
    }
  }

  // --- actions -----------------------------------------------------------------------------------------

  function act(path, json, done) {
    var c = state.current;
    if (!c || state.busy) return;
    state.busy = true;
    $("case-error").textContent = "";
    setButtons(true);
    api("/cases/" + c.id + path, { method: "POST", json: json }).then(function (updated) {
      done(updated);
    }).catch(function (err) {
      $("case-error").textContent = describe(err);
      if (err instanceof ApiError && err.status === 409) {
        // Someone else decided this case: refresh what is shown.
        api("/cases/" + c.id).then(function (fresh) { if (state.current && state.current.id === fresh.id) {
          state.current = fresh; renderCase(fresh, false); } }).catch(function () {});
      }
    }).then(function () { state.busy = false; setButtons(false); });
  }

  function setButtons(disabled) {
    ["btn-confirm", "btn-reject", "btn-class"].forEach(function (id) { $(id).disabled = disabled; });
  }

  function removeCurrentAndAdvance(message) {
    state.cases.splice(state.index, 1);
    state.current = null;
    $("notice").textContent = message;
    closeReject();
    renderQueue();
    showCurrent();
  }

  function confirmCase() {
    var c = state.current;
    if (!c) return;
    act("/confirm", undefined, function () { removeCurrentAndAdvance(t("confirmed", { id: c.id })); });
  }

  function openReject() {
    if (!state.current) return;
    $("reject-form").hidden = false;
    $("reject-error").textContent = "";
    $("reject-reason").focus();
  }

  function closeReject() {
    $("reject-form").hidden = true;
    $("reject-reason").value = "";
    $("reject-error").textContent = "";
  }

  function submitReject() {
    var c = state.current, reason = $("reject-reason").value.trim();
    if (!c) return;
    if (!reason) { $("reject-error").textContent = t("reasonRequired"); $("reject-reason").focus(); return; }
    act("/reject", { reason: reason }, function () { removeCurrentAndAdvance(t("rejected", { id: c.id })); });
  }

  function changeClass() {
    var c = state.current, kind = $("class-select").value;
    if (!c || !kind) return;
    act("/class", { kind: kind }, function (updated) {
      state.current = updated;
      state.cases[state.index] = updated;
      $("notice").textContent = t("classChanged", { id: c.id, kind: kindText(kind, updated.category_code) });
      renderQueue();
      renderCase(updated, false);
    });
  }

  function toggleHelp(show) {
    var help = $("help");
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  // --- wiring ------------------------------------------------------------------------------------------

  function onKey(event) {
    if ($("review").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target, tag = target && target.tagName;
    if (target === $("reject-reason")) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submitReject(); }
      else if (event.key === "Escape") { event.preventDefault(); closeReject(); }
      return;
    }
    if (event.key === "Escape") { toggleHelp(false); closeReject(); return; }
    // Typing fields keep their keys; a checkbox (the clean-frame toggle) does not swallow the shortcuts.
    var typing = tag === "INPUT" ? ["checkbox", "radio", "button"].indexOf(target.type) < 0 : tag === "TEXTAREA" ||
                 tag === "SELECT" || (target && target.isContentEditable);
    if (typing) return;
    switch (event.key) {
      case "c": event.preventDefault(); confirmCase(); break;
      case "r": event.preventDefault(); openReject(); break;
      case "j": case "ArrowRight": event.preventDefault(); go(1); break;
      case "k": case "ArrowLeft": event.preventDefault(); go(-1); break;
      case "?": event.preventDefault(); toggleHelp(); break;
      default: break;
    }
  }

  function init() {
    $("login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var key = $("api-key").value.trim();
      if (!key) return;
      state.key = key;
      sessionStorage.setItem(KEY_STORE, key);
      $("api-key").value = "";
      start();
    });
    $("sign-out").addEventListener("click", function () { signOut(); });
    $("nav-review").addEventListener("click", function () {
      showView("review");
      loadQueue(state.current && state.current.id);  // decisions undone in the history are pending again
    });
    $("nav-history").addEventListener("click", function () { showView("history"); });
    $("show-clean").addEventListener("change", function () {
      state.clean = $("show-clean").checked;
      if (state.current) { loadImages(state.current); renderLegend(state.current); }
    });
    $("nav-zones").addEventListener("click", function () { showView("zones"); });
    $("nav-flights").addEventListener("click", function () { showView("flights"); });
    $("lang-toggle").addEventListener("click", function () {
      state.lang = state.lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_STORE, state.lang);
      applyLanguage();
    });
    $("filters").addEventListener("submit", function (event) { event.preventDefault(); loadQueue(); });
    $("btn-confirm").addEventListener("click", confirmCase);
    $("btn-reject").addEventListener("click", openReject);
    $("btn-class").addEventListener("click", changeClass);
    $("btn-prev").addEventListener("click", function () { go(-1); });
    $("btn-next").addEventListener("click", function () { go(1); });
    $("btn-help").addEventListener("click", function () { toggleHelp(); });
    $("help-close").addEventListener("click", function () { toggleHelp(false); });
    $("reject-form").addEventListener("submit", function (event) { event.preventDefault(); submitReject(); });
    $("reject-cancel").addEventListener("click", closeReject);
    document.addEventListener("keydown", onKey);
    window.addEventListener("resize", drawBoxes);
    if (window.ResizeObserver) {  // the column settles after the first layout (fonts, the queue's width)
      var lastWidth = -1;  // its width only: the height follows the frame drawBoxes sizes (no feedback loop)
      new ResizeObserver(function () {
        var width = $("case-body").clientWidth;
        if (width === lastWidth || $("review").hidden) return;
        lastWidth = width;
        drawBoxes();
      }).observe($("case-body"));
    }
    // An address typed or linked while the page is open: `#case=42` opens that case; `#zones`, `#history`,
    // `#flights` or `#review` switch the view (before, only `#case=` was heard and `/#zones` did nothing).
    window.addEventListener("hashchange", function () {
      if (!state.key || !state.role) return;
      if (/^#case=\d+$/.test(location.hash)) {
        if (state.role === "pilot") return;
        state.openCase = caseFromAddress();
        showView("review");
        loadQueue();
        return;
      }
      var wanted = viewOfHash(location.hash);
      if (wanted === state.view) return;
      showView(wanted);
      if (wanted === "review" && state.role !== "pilot") loadQueue(state.current && state.current.id);
    });
    applyLanguage();
    if (state.key) start(); else showLogin();
  }

  // What the zone editor (zones.js) and the flights view (flights.js) share with this page: the API with the key,
  // strings, errors, the key's role, times.
  window.SW_APP = {
    api: api, t: t, describe: describe, ApiError: ApiError, kindText: kindText, originName: originName,
    showView: showView, placeLabels: placeLabels,
    lang: function () { return state.lang; },
    key: function () { return state.key; },
    role: function () { return state.role; },
    view: function () { return state.view; },
    localTime: localTime, dwell: dwell
  };

  init();
})();
