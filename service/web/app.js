/* The review page: API key once per tab (typed in, or `?key=` in the address), the queue of pending cases, one
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

  // A key in the address (`/?key=...`, as `streetwatch demo` prints it) signs in like the form does: it is kept
  // for this tab, then removed from the address bar and the history so it is not bookmarked or shared.
  function keyFromAddress() {
    var params = new URLSearchParams(location.search);
    var key = (params.get("key") || "").trim();
    if (!params.has("key")) return;
    params.delete("key");
    var query = params.toString();
    history.replaceState(history.state, "", location.pathname + (query ? "?" + query : "") + location.hash);
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
    view: "",         // the view shown: review, zones or flights
    openCase: caseFromAddress(),
    lang: localStorage.getItem(LANG_STORE) === "en" ? "en" : "zh",
    cameras: [],
    cases: [],        // the pending queue, newest first
    index: 0,         // current case in `cases`
    current: null,    // full CasePublic of the current case
    busy: false,
    blobUrls: [],
    loadToken: 0
  };

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
  }

  // --- views: the review queue, the zone editor (zones.js) ------------------------------------------------

  function showView(name) {
    if (state.role === "pilot") name = "flights";  // a pilot key reads nothing else
    if (name === "zones" && !window.SW_ZONES) name = "review";
    var zones = name === "zones", flights = name === "flights";
    state.view = zones ? "zones" : flights ? "flights" : "review";
    $("review").hidden = zones || flights;
    $("zones-view").hidden = !zones;
    $("flights-view").hidden = !flights;
    $("nav-review").classList.toggle("active", !zones && !flights);
    $("nav-zones").classList.toggle("active", zones);
    $("nav-flights").classList.toggle("active", flights);
    if (!flights && window.SW_FLIGHTS) window.SW_FLIGHTS.close();
    if (zones || flights) {
      toggleHelp(false);
      if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
      if (zones) window.SW_ZONES.open(state.cameras);
      else if (window.SW_FLIGHTS) window.SW_FLIGHTS.open();  // else flights.js opens itself when it loads
    } else if (location.hash) {
      history.replaceState(null, "", location.pathname + location.search);
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

  // Where a case comes from: its camera, or (a case with no camera) the drone flight that found it.
  function originName(c) {
    return c.camera_id ? cameraName(c.camera_id) : t("flight") + " " + c.flight_id;
  }

  // --- sign in / out -----------------------------------------------------------------------------------

  function showLogin(message) {
    $("review").hidden = true;
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
      $("nav-review").hidden = $("nav-zones").hidden = state.role === "pilot";
      fillKindSelects();
      var wanted = location.hash === "#zones" ? "zones" : location.hash === "#flights" ? "flights" : "review";
      showView(state.openCase ? "review" : wanted);
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
      meta.textContent = originName(c) + " · " + localTime(c.last_seen);
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
      [t("zone"), c.zone_id],
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
  }

  function releaseBlobs() {
    state.blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    state.blobUrls = [];
  }

  function loadImages(c) {
    releaseBlobs();
    var img = $("evidence-img"), crop = $("crop-img");
    img.removeAttribute("src"); crop.removeAttribute("src");
    img.hidden = true; $("crop-figure").hidden = true;
    clearCanvas();
    var main = c.evidence.find(function (e) { return e.kind === "annotated"; }) ||
               c.evidence.find(function (e) { return e.kind === "original"; });
    var cropEv = c.evidence.find(function (e) { return e.kind === "crop"; });
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
    if (cropEv) fetchInto(cropEv, crop, function () { $("crop-figure").hidden = false; });
  }

  function clearCanvas() {
    var canvas = $("overlay");
    canvas.width = 0; canvas.height = 0;
  }

  function drawBoxes() {
    var img = $("evidence-img"), canvas = $("overlay"), c = state.current;
    if (!c || img.hidden || !img.naturalWidth) { clearCanvas(); return; }
    var w = img.clientWidth, h = img.clientHeight, sx = w / img.naturalWidth, sy = h / img.naturalHeight;
    canvas.width = w; canvas.height = h;
    canvas.style.width = w + "px"; canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffcc00";
    ctx.fillStyle = "#ffcc00";
    ctx.font = "12px sans-serif";
    (c.boxes || []).forEach(function (b, i) {  // frame pixels x1, y1, x2, y2
      var x = b[0] * sx, y = b[1] * sy, bw = (b[2] - b[0]) * sx, bh = (b[3] - b[1]) * sy;
      ctx.strokeRect(x, y, bw, bh);
      var label = c.track_ids && c.track_ids[i] !== undefined ? "#" + c.track_ids[i] : "";
      if (label) ctx.fillText(label, x + 2, Math.max(10, y - 3));
    });
    canvas.dataset.boxes = String((c.boxes || []).length);
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
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
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
    $("nav-review").addEventListener("click", function () { showView("review"); });
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
    window.addEventListener("hashchange", function () {  // `#case=42` typed or linked while the page is open
      if (!/^#case=\d+$/.test(location.hash) || !state.key || state.role === "pilot") return;
      state.openCase = caseFromAddress();
      showView("review");
      loadQueue();
    });
    applyLanguage();
    if (state.key) start(); else showLogin();
  }

  // What the zone editor (zones.js) and the flights view (flights.js) share with this page: the API with the key,
  // strings, errors, the key's role, times.
  window.SW_APP = {
    api: api, t: t, describe: describe, ApiError: ApiError,
    lang: function () { return state.lang; },
    key: function () { return state.key; },
    role: function () { return state.role; },
    view: function () { return state.view; },
    localTime: localTime, dwell: dwell
  };

  init();
})();
