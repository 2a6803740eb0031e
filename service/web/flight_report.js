/* The flight report's map, list and panel (inlined into report.html by service/report.py).
   Reads the JSON blob in #report-data; positions there are already mosaic pixels (the SVG's user units).
   Every piece of text from the data goes through textContent or setAttribute, never innerHTML. */
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var MARKER_PX = { violation: 8, plain: 5 };  // radius on screen, whatever the zoom
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var svg = document.getElementById("map");
  var findings = data.findings || [];
  var byId = {};
  var markers = {};
  var items = {};
  var selected = null;
  var view = null;
  var home = null;

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function htmlEl(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function points(list) {
    return list.map(function (p) { return p[0] + "," + p[1]; }).join(" ");
  }

  // --- the view: zoom and pan by changing the viewBox -------------------------------------------------------
  function unitsPerScreenPx() {
    var box = svg.getBoundingClientRect();
    if (!box.width || !box.height) { return 1; }
    return Math.max(view[2] / box.width, view[3] / box.height);  // preserveAspectRatio "meet"
  }

  function resizeMarkers() {
    var s = unitsPerScreenPx();
    findings.forEach(function (f) {
      var m = markers[f.id];
      if (!m) { return; }
      var r = (f.violation ? MARKER_PX.violation : MARKER_PX.plain) * (f.id === selected ? 1.4 : 1);
      m.setAttribute("r", String(r * s));
    });
  }

  function setView(v) {
    var minW = home[2] / 200, maxW = home[2] * 20;
    var k = v[2] < minW ? minW / v[2] : v[2] > maxW ? maxW / v[2] : 1;
    if (k !== 1) {  // keep the centre, clamp the size
      var cx = v[0] + v[2] / 2, cy = v[1] + v[3] / 2;
      v = [cx - v[2] * k / 2, cy - v[3] * k / 2, v[2] * k, v[3] * k];
    }
    view = v;
    svg.setAttribute("viewBox", v.join(" "));
    resizeMarkers();
  }

  function toUser(clientX, clientY) {
    var pt = svg.createSVGPoint();
    pt.x = clientX;
    pt.y = clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }

  function zoomAt(x, y, k) {
    setView([x - (x - view[0]) * k, y - (y - view[1]) * k, view[2] * k, view[3] * k]);
  }

  function zoomCentre(k) {
    zoomAt(view[0] + view[2] / 2, view[1] + view[3] / 2, k);
  }

  // --- selection -----------------------------------------------------------------------------------------
  function showPanel(f) {
    document.getElementById("panel").hidden = false;
    document.getElementById("panel-title").textContent = f.title;
    var img = document.getElementById("panel-crop");
    var caption = document.getElementById("panel-crop-caption");
    if (f.crop) {
      img.hidden = false;
      img.setAttribute("src", f.crop);
      img.setAttribute("alt", f.title);
      caption.textContent = "";
    } else {
      img.hidden = true;
      img.removeAttribute("src");
      caption.textContent = "无裁剪图 No crop";
    }
    var dl = document.getElementById("panel-fields");
    while (dl.firstChild) { dl.removeChild(dl.firstChild); }
    f.fields.forEach(function (pair) {
      dl.appendChild(htmlEl("dt", null, pair[0]));
      dl.appendChild(htmlEl("dd", null, pair[1]));
    });
    var link = document.getElementById("panel-link");
    if (f.case_href) {
      link.hidden = false;
      link.setAttribute("href", f.case_href);
      link.textContent = "打开案件 Open the case";
    } else if (f.annotated) {
      link.hidden = false;
      link.setAttribute("href", f.annotated);
      link.textContent = "证据图片 Evidence image";
    } else {
      link.hidden = true;
      link.removeAttribute("href");
    }
  }

  function select(id, bringIntoView) {
    var f = byId[id];
    if (!f) { return; }
    if (selected !== null) {
      if (markers[selected]) { markers[selected].classList.remove("selected"); }
      if (items[selected]) {
        items[selected].classList.remove("current");
        items[selected].removeAttribute("aria-selected");
      }
    }
    selected = id;
    var m = markers[id];
    if (m) {
      m.classList.add("selected");
      m.parentNode.appendChild(m);  // on top of its neighbours
    }
    items[id].classList.add("current");
    items[id].setAttribute("aria-selected", "true");
    showPanel(f);
    if (view && m && bringIntoView) {
      var outside = f.x < view[0] || f.x > view[0] + view[2] || f.y < view[1] || f.y > view[1] + view[3];
      if (outside) { setView([f.x - view[2] / 2, f.y - view[3] / 2, view[2], view[3]]); }
    }
    if (!bringIntoView && items[id].scrollIntoView) { items[id].scrollIntoView({ block: "nearest" }); }
    resizeMarkers();
  }

  // --- the map -------------------------------------------------------------------------------------------
  var dragged = false;

  function drawMap(map) {
    if (map.image) {
      svg.appendChild(svgEl("image", { href: map.image, x: 0, y: 0, width: map.width, height: map.height,
                                       preserveAspectRatio: "none", id: "mosaic" }));
    } else {
      svg.appendChild(svgEl("rect", { x: 0, y: 0, width: map.width, height: map.height, fill: "#3a3f48" }));
    }
    var prints = svgEl("g", { id: "footprints" });
    (data.footprints || []).forEach(function (ring) {
      prints.appendChild(svgEl("polygon", { "class": "footprint", points: points(ring),
                                            "vector-effect": "non-scaling-stroke" }));
    });
    svg.appendChild(prints);
    if (data.track && data.track.length > 1) {
      svg.appendChild(svgEl("polyline", { id: "track", "class": "track", points: points(data.track),
                                          "vector-effect": "non-scaling-stroke" }));
    }
    var group = svgEl("g", { id: "markers" });
    // plain findings first, so that violations are drawn on top of them
    findings.slice().sort(function (a, b) { return (a.violation ? 1 : 0) - (b.violation ? 1 : 0); })
      .forEach(function (f) {
        var m = svgEl("circle", { "class": "marker " + (f.violation ? "violation" : "plain"), cx: f.x, cy: f.y,
                                  r: 1, fill: f.color, tabindex: 0, "vector-effect": "non-scaling-stroke" });
        m.setAttribute("data-finding-id", f.id);
        var tip = svgEl("title");
        tip.textContent = f.title + " · " + f.id;
        m.appendChild(tip);
        m.addEventListener("click", function (ev) {
          ev.stopPropagation();
          if (dragged) { return; }
          select(f.id, false);
        });
        m.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(f.id, false); }
        });
        markers[f.id] = m;
        group.appendChild(m);
      });
    svg.appendChild(group);

    home = map.view.slice();
    setView(home.slice());

    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = toUser(ev.clientX, ev.clientY);
      zoomAt(p.x, p.y, Math.exp(Math.max(-300, Math.min(300, ev.deltaY)) * 0.002));
    }, { passive: false });
    var drag = null;
    svg.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) { return; }
      drag = { x: ev.clientX, y: ev.clientY, view: view.slice(), s: unitsPerScreenPx(), id: ev.pointerId };
      dragged = false;
    });
    svg.addEventListener("pointermove", function (ev) {
      if (!drag || ev.pointerId !== drag.id) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!dragged && Math.abs(dx) + Math.abs(dy) < 4) { return; }  // a click, not yet a drag
      if (!dragged) {
        dragged = true;
        svg.setPointerCapture(ev.pointerId);
        svg.classList.add("dragging");
      }
      setView([drag.view[0] - dx * drag.s, drag.view[1] - dy * drag.s, drag.view[2], drag.view[3]]);
    });
    function endDrag() {
      drag = null;
      svg.classList.remove("dragging");
      setTimeout(function () { dragged = false; }, 0);  // after the click that ends the drag
    }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);
    document.getElementById("zoom-in").addEventListener("click", function () { zoomCentre(1 / 1.5); });
    document.getElementById("zoom-out").addEventListener("click", function () { zoomCentre(1.5); });
    document.getElementById("zoom-reset").addEventListener("click", function () { setView(home.slice()); });
    window.addEventListener("resize", resizeMarkers);
  }

  function drawLegend() {
    var legend = document.getElementById("legend");
    var kinds = [];
    var seen = {};
    var plain = false;
    findings.forEach(function (f) {
      if (!f.violation) { plain = true; return; }
      if (!seen[f.kind]) { seen[f.kind] = true; kinds.push(f); }
    });
    function entry(swatchClass, colour, text) {
      var li = htmlEl("li");
      var sw = htmlEl("span", "swatch " + swatchClass);
      if (colour) { sw.style.background = colour; }
      li.appendChild(sw);
      li.appendChild(document.createTextNode(text));
      legend.appendChild(li);
    }
    kinds.forEach(function (f) { entry("", f.color, f.title); });
    if (plain) { entry("", "#9e9e9e", "其他发现 Other finding"); }
    if ((data.footprints || []).length) { entry("outline", null, "画面范围 Frame footprint"); }
    if ((data.track || []).length > 1) { entry("line", "#ffeb3b", "航迹 Track"); }
  }

  // --- the list ------------------------------------------------------------------------------------------
  function drawList() {
    var list = document.getElementById("finding-list");
    document.getElementById("finding-count").textContent = String(findings.length);
    document.getElementById("no-findings").hidden = findings.length > 0;
    findings.forEach(function (f) {
      byId[f.id] = f;
      var li = htmlEl("li");
      li.setAttribute("data-finding-id", f.id);
      li.setAttribute("tabindex", "0");
      li.setAttribute("role", "option");
      var sw = htmlEl("span", "swatch");
      sw.style.background = f.color;
      li.appendChild(sw);
      li.appendChild(htmlEl("span", "title", f.title));
      li.appendChild(htmlEl("span", "meta", f.meta + " · " + f.id));
      li.addEventListener("click", function () { select(f.id, true); });
      li.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(f.id, true); }
      });
      items[f.id] = li;
      list.appendChild(li);
    });
  }

  drawList();
  if (data.map_note) {
    var note = document.getElementById("map-note");
    note.hidden = false;
    note.textContent = data.map_note;
  }
  if (data.map) {
    drawMap(data.map);
    drawLegend();
  } else {
    document.getElementById("map-wrap").hidden = true;
    document.getElementById("map-tools").hidden = true;
    var none = document.getElementById("no-map");
    none.hidden = false;
    none.textContent = "无地图：无遥测数据 · " + data.no_map;
  }
  document.body.setAttribute("data-ready", "1");
}());
