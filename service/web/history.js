/* The history view (`/#history`): decided cases, the latest decision first (GET /cases/history), filtered by
   status and "only mine", with an undo button for one's own confirmation or rejection while the server says it
   may be undone (POST /cases/{id}/undo; within review.undo_window_s, nothing delivered yet). Why a decision
   cannot be undone is said in the reader's language from the server's code. Uses app.js (window.SW_APP). */
(function () {
  "use strict";
  var APP = window.SW_APP;
  var PAGE = 50;
  var STATUSES = ["confirmed", "rejected", "merged", "posted", "post_failed"];

  var hi = { rows: [], cursor: null, windowS: null, busy: false, token: 0 };

  function $(id) { return document.getElementById(id); }
  function t(key, params) { return APP.t(key, params); }

  function query(cursor) {
    var params = new URLSearchParams({ limit: String(PAGE) });
    if ($("hi-status").value) params.append("status", $("hi-status").value);
    if ($("hi-mine").checked) params.set("mine", "true");
    if (cursor) params.set("cursor", String(cursor));
    return params.toString();
  }

  function load(more) {
    var token = ++hi.token;
    $("hi-error").textContent = "";
    return APP.api("/cases/history?" + query(more ? hi.cursor : null)).then(function (body) {
      if (token !== hi.token) return;
      hi.rows = more ? hi.rows.concat(body.data) : body.data;
      hi.cursor = body.next_cursor;
      hi.windowS = body.undo_window_s;
      render();
    }).catch(function (err) { if (token === hi.token) $("hi-error").textContent = APP.describe(err); });
  }

  function time(iso) {
    return new Date(iso).toLocaleString(APP.lang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString(APP.lang() === "en" ? "en-GB" : "zh-CN",
                                            { hour12: false, hour: "2-digit", minute: "2-digit" });
  }

  function cell(tr, content, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (typeof content === "string") td.textContent = content; else if (content) td.appendChild(content);
    tr.appendChild(td);
    return td;
  }

  function render() {
    var list = $("hi-list");
    list.innerHTML = "";
    hi.rows.forEach(function (row) {
      var c = row.case, d = row.decision, u = row.undo;
      var tr = document.createElement("tr");
      tr.dataset.caseId = String(c.id);
      var link = document.createElement("a");
      link.href = "#case=" + c.id;  // app.js opens it in the review view
      link.textContent = "#" + c.id;
      cell(tr, link);
      cell(tr, APP.kindText(c.corrected_kind || c.kind, c.category_code));
      cell(tr, APP.originName(c));
      var what = t("act_" + d.action) + " · " + d.actor + " · " + time(d.at);
      if (c.status === "rejected" && c.reject_reason) what += "\n" + t("hiReason", { reason: c.reject_reason });
      if (c.status === "merged" && c.merged_into) what += "\n" + t("hiMergedInto", { id: c.merged_into });
      cell(tr, what).style.whiteSpace = "pre-line";
      var badge = document.createElement("span");
      badge.className = "badge status-" + c.status;
      badge.textContent = t("st_" + c.status);
      cell(tr, badge);
      var td = cell(tr, null, "undo");
      if (u.allowed) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "undo-btn";
        button.textContent = t("undoBtn");
        button.disabled = hi.busy;
        button.addEventListener("click", function () { undo(row); });
        td.appendChild(button);
        var until = document.createElement("span");
        until.className = "why";
        until.textContent = t("undoUntil", { time: clock(u.until) });
        td.appendChild(until);
      } else {
        var why = document.createElement("span");
        why.className = "why";
        why.dataset.code = u.code;
        why.textContent = t("undo_" + u.code, { who: d.actor, time: u.until ? clock(u.until) : "" });
        td.appendChild(why);
      }
      list.appendChild(tr);
    });
    $("hi-empty").hidden = hi.rows.length > 0;
    $("hi-more").hidden = !hi.cursor;
    $("hi-window").textContent = hi.windowS ? t("hiWindow", { m: Math.round(hi.windowS / 60) }) : t("hiNoUndo");
  }

  function undo(row) {
    if (hi.busy) return;
    hi.busy = true;
    $("hi-error").textContent = "";
    $("hi-notice").textContent = "";
    render();
    APP.api("/cases/" + row.case.id + "/undo", { method: "POST" }).then(function () {
      $("hi-notice").textContent = t("undone", { id: row.case.id, what: t("act_" + row.decision.action) });
    }).catch(function (err) {
      $("hi-error").textContent = APP.describe(err);
    }).then(function () {
      hi.busy = false;
      return load(false);
    });
  }

  function relabel() {
    var select = $("hi-status"), chosen = select.value;
    select.innerHTML = "";
    var all = document.createElement("option");
    all.value = ""; all.textContent = t("hiAllDecided");
    select.appendChild(all);
    STATUSES.forEach(function (s) {
      var o = document.createElement("option");
      o.value = s; o.textContent = t("st_" + s);
      select.appendChild(o);
    });
    select.value = chosen;
    labelDownload();
    if (!$("history-view").hidden) render();
  }

  function open() {
    $("hi-notice").textContent = "";
    load(false);
  }

  // The bulk export (GET /export: cases.csv, cases.geojson and the blurred evidence as a zip) of the status
  // chosen above (none chosen: every case). Fetched with the key like the evidence images, then saved through a
  // blob URL. The two labels live here, beside the only button that uses them.
  var DOWNLOAD = { zh: { text: "下载 (zip)", title: "案件表 (CSV、GeoJSON) 和打码后的证据图片" },
                   en: { text: "Download (zip)", title: "Cases (CSV, GeoJSON) with their blurred evidence images" } };

  function download() {
    var button = $("hi-download");
    var params = new URLSearchParams();
    if ($("hi-status").value) params.set("status", $("hi-status").value);
    $("hi-error").textContent = "";
    button.disabled = true;
    APP.api("/export?" + params.toString(), { blob: true }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var a = document.createElement("a");
      a.href = url;
      a.download = "streetwatch-cases" + ($("hi-status").value ? "-" + $("hi-status").value : "") + ".zip";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    }).catch(function (err) {
      $("hi-error").textContent = APP.describe(err);
    }).then(function () { button.disabled = false; });
  }

  function labelDownload() {
    var words = DOWNLOAD[APP.lang()] || DOWNLOAD.zh;
    $("hi-download").textContent = words.text;
    $("hi-download").title = words.title;
  }

  function init() {
    $("hi-filters").addEventListener("submit", function (event) { event.preventDefault(); load(false); });
    $("hi-more").addEventListener("click", function () { load(true); });
    var button = document.createElement("button");
    button.type = "button";
    button.id = "hi-download";
    button.addEventListener("click", download);
    $("hi-filters").insertBefore(button, $("hi-window"));
    relabel();
  }

  window.SW_HISTORY = { open: open, relabel: relabel };
  init();
})();
