/* The drone flights view (/#flights): the list of flight jobs with their status and a progress bar (percent,
   frames, ETA; polled every 2 s while one is queued or running), a cancel button (admin keys), the report link
   (reviewer and admin keys: the report opens in a new tab through a short-lived link, as a tab cannot send the
   key), and an upload form (admin and pilot keys: a video with its SRT, or a zip of stills; sent with
   XMLHttpRequest for its upload progress). Pilot keys see their own flights only (the API filters).
   Uses the API helper of app.js (window.SW_APP); every text from the server is set with textContent. */
(function () {
  "use strict";
  var APP = window.SW_APP;
  var POLL_MS = 2000;
  var ACTIVE = { queued: true, running: true };

  var fl = { open: false, flights: [], timer: null, token: 0, uploading: null };

  function $(id) { return document.getElementById(id); }
  function t(key, params) { return APP.t(key, params); }
  function role() { return APP.role(); }
  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // --- loading and polling --------------------------------------------------------------------------------

  function open() {
    fl.open = true;
    relabel();
    return load();
  }

  function close() {
    fl.open = false;
    if (fl.timer) { clearTimeout(fl.timer); fl.timer = null; }
  }

  function load() {
    var token = ++fl.token;
    if (fl.timer) { clearTimeout(fl.timer); fl.timer = null; }
    return APP.api("/flights?limit=100").then(function (body) {
      if (token !== fl.token) return;
      fl.flights = body.data;
      $("fl-error").textContent = "";
      render();
    }).catch(function (err) {
      if (token === fl.token) $("fl-error").textContent = APP.describe(err);
    }).then(function () {
      // Poll while something is waiting or running (and the view is shown); stop otherwise.
      if (token !== fl.token || !fl.open) return;
      if (fl.flights.some(function (f) { return ACTIVE[f.status]; })) fl.timer = setTimeout(load, POLL_MS);
    });
  }

  // --- the list ------------------------------------------------------------------------------------------

  function eta(seconds) {
    return seconds === null || seconds === undefined ? "" : t("flEta", { t: APP.dwell(seconds) });
  }

  function progressCell(f) {
    var p = f.progress, cell = el("td", "fl-progress");
    var bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(p.percent));
    var fill = el("span", "fill status-" + f.status);
    fill.style.width = Math.max(0, Math.min(100, p.percent)) + "%";
    bar.appendChild(fill);
    cell.appendChild(bar);
    var parts = [p.percent.toFixed(0) + "%"];
    if (p.stage && f.status === "running") parts.push(t("stage_" + p.stage));
    if (p.frames_total) parts.push(t("flFrames", { done: p.frames_done, total: p.frames_total }));
    if (f.status === "running" && p.eta_s !== null) parts.push(eta(p.eta_s));
    if (p.findings !== null && p.findings !== undefined) parts.push(t("flFindings", { n: p.findings }));
    if (f.status === "done") parts.push(t("flCases", { n: f.cases }));
    cell.appendChild(el("span", "meta fl-progress-text", parts.join(" · ")));
    return cell;
  }

  function render() {
    var list = $("fl-list");
    list.innerHTML = "";
    fl.flights.forEach(function (f) {
      var tr = el("tr");
      tr.dataset.flightId = f.id;
      tr.dataset.status = f.status;
      var name = el("td", "fl-name");
      name.appendChild(el("span", "", f.name || f.id));
      name.appendChild(el("span", "meta", f.id + (f.source_name ? " · " + f.source_name : "")));
      if (f.created_by && role() !== "pilot") {
        name.appendChild(el("span", "meta", t("flByWhom", { who: f.created_by })));
      }
      tr.appendChild(name);
      var status = el("td", "fl-status");
      status.appendChild(el("span", "badge status-" + f.status, t("fs_" + f.status)));
      if (f.error) status.appendChild(el("span", "meta error fl-failure", f.error));
      if (f.attempts > 1) status.appendChild(el("span", "meta", t("flAttempts", { n: f.attempts - 1 })));
      (f.notes || []).forEach(function (note) { status.appendChild(el("span", "meta fl-note", note)); });
      tr.appendChild(status);
      tr.appendChild(progressCell(f));
      tr.appendChild(el("td", "fl-created", APP.localTime(f.created_at)));
      var actions = el("td", "fl-actions");
      if (f.status === "done" && role() !== "pilot") {
        var link = el("a", "fl-report", t("flReport"));
        link.href = f.links.report;  // what a key-less tab would get; the click opens a shared link instead
        link.target = "_blank";
        link.addEventListener("click", function (event) { event.preventDefault(); openReport(f); });
        actions.appendChild(link);
      }
      if (ACTIVE[f.status] && role() === "admin") {
        var cancel = el("button", "danger fl-cancel", t("flCancel"));
        cancel.type = "button";
        cancel.addEventListener("click", function () { cancelFlight(f, cancel); });
        actions.appendChild(cancel);
      }
      tr.appendChild(actions);
      list.appendChild(tr);
    });
    $("fl-empty").hidden = fl.flights.length > 0;
    $("fl-count").textContent = t("flCount", { n: fl.flights.length });
  }

  function openReport(f) {
    // Opened at once (still inside the click, so no pop-up blocker), pointed at the link when it arrives.
    var tab = window.open("about:blank", "_blank");
    APP.api("/flights/" + encodeURIComponent(f.id) + "/report-link", { method: "POST" }).then(function (body) {
      if (tab) tab.location.href = body.url; else window.location.href = body.url;
    }).catch(function (err) {
      if (tab) tab.close();
      $("fl-error").textContent = APP.describe(err);
    });
  }

  function cancelFlight(f, button) {
    button.disabled = true;
    APP.api("/flights/" + encodeURIComponent(f.id) + "/cancel", { method: "POST" }).then(function () {
      $("fl-notice").textContent = t("flCancelled", { id: f.id });
    }).catch(function (err) {
      $("fl-error").textContent = APP.describe(err);
    }).then(load);
  }

  // --- upload ----------------------------------------------------------------------------------------------

  function kind() {
    var checked = document.querySelector('input[name="fl-kind"]:checked');
    return checked ? checked.value : "video";
  }

  function showKind() {
    $("fl-video-fields").hidden = kind() !== "video";
    $("fl-stills-fields").hidden = kind() !== "stills";
  }

  function submit(event) {
    event.preventDefault();
    if (fl.uploading) return;
    var form = new FormData(), video = $("fl-video").files[0], srt = $("fl-srt").files[0],
        stills = $("fl-stills").files[0];
    $("fl-upload-error").textContent = "";
    if (kind() === "video" ? !(video && srt) : !stills) {
      $("fl-upload-error").textContent = t("flNeedFiles");
      return;
    }
    var name = $("fl-name").value.trim();
    if (name) form.append("name", name);
    if (kind() === "video") { form.append("video", video); form.append("srt", srt); }
    else form.append("stills", stills);
    var xhr = new XMLHttpRequest(), progress = $("fl-upload-progress");
    fl.uploading = xhr;
    $("fl-submit").disabled = true;
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      progress.value = e.loaded / e.total;
      $("fl-notice").textContent = t("flUploading", { p: Math.round(100 * e.loaded / e.total) });
    };
    xhr.onloadend = function () {
      fl.uploading = null;
      $("fl-submit").disabled = false;
      progress.hidden = true;
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 202 && body) {
        $("fl-notice").textContent = t("flUploaded", { id: body.id });
        $("fl-upload").reset();
        showKind();
        load();
        return;
      }
      $("fl-notice").textContent = "";
      var detail = body && body.detail, msg;
      if (Array.isArray(detail)) {
        msg = detail.map(function (p) { return (p.field ? p.field + ": " : "") + p.msg; }).join("\n");
      } else {
        msg = typeof detail === "string" ? detail : (xhr.status ? "HTTP " + xhr.status : t("errorPrefix"));
      }
      $("fl-upload-error").textContent = t("errorPrefix") + (xhr.status ? " (" + xhr.status + ")" : "") + ": " + msg;
    };
    xhr.open("POST", "/api/v1/flights");
    xhr.setRequestHeader("Authorization", "Bearer " + APP.key());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.send(form);
  }

  // --- language, wiring ------------------------------------------------------------------------------------

  function relabel() {
    var uploads = role() === "admin" || role() === "pilot";
    $("fl-upload-panel").hidden = !uploads;
    document.querySelector(".layout.flights").classList.toggle("no-side", !uploads);
    if (fl.open) render();
  }

  function init() {
    $("fl-refresh").addEventListener("click", function () { load(); });
    $("fl-upload").addEventListener("submit", submit);
    Array.prototype.forEach.call(document.querySelectorAll('input[name="fl-kind"]'), function (radio) {
      radio.addEventListener("change", showKind);
    });
    showKind();
  }

  window.SW_FLIGHTS = { open: open, close: close, relabel: relabel, reload: load };
  init();
  if (APP.view() === "flights" && !$("flights-view").hidden) open();  // the page asked for it before this loaded
})();
