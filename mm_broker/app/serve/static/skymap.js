// mm_broker portal: the event's sky map in SVG, drawn here (no CDN, no survey images).
// Projection: plate carree around the region's centre, RA increasing to the left,
// x scaled by cos(dec0). Cells of the MOC (90 %) and of the 50 % region, or a circle's
// 50 % / 90 % rings; candidates as markers linked to the table. Drag: pan; wheel: zoom.
"use strict";
(function () {
  var box = document.getElementById("skymap");
  if (!box) return;
  var NS = "http://www.w3.org/2000/svg";
  var markers = JSON.parse(document.getElementById("markers").textContent || "[]");
  var ra0 = 0, dec0 = 0, k = 1, home = null, view = null, svg, gCells, gOver;

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var a in attrs) e.setAttribute(a, attrs[a]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function wrap(d) { d = ((d + 180) % 360 + 360) % 360 - 180; return d; }
  function xy(ra, dec) { return [-wrap(ra - ra0) * k, -dec]; }
  function polygonPoints(corners) {
    var first = null, pts = [];
    corners.forEach(function (c) {
      var p = xy(c[0], c[1]);
      if (first !== null) {               // keep a cell on one side of the cut
        while (p[0] - first[0] > 180 * k) p[0] -= 360 * k;
        while (first[0] - p[0] > 180 * k) p[0] += 360 * k;
      } else { first = p; }
      pts.push(p[0].toFixed(4) + "," + p[1].toFixed(4));
    });
    return pts.join(" ");
  }
  function ring(ra, dec, r) {              // small circle of radius r (deg) on the sphere
    var out = [], d2r = Math.PI / 180, la = dec * d2r, rr = r * d2r;
    for (var t = 0; t <= 360; t += 4) {
      var b = t * d2r;
      var lat = Math.asin(Math.sin(la) * Math.cos(rr) + Math.cos(la) * Math.sin(rr) * Math.cos(b));
      var lon = ra * d2r + Math.atan2(Math.sin(b) * Math.sin(rr) * Math.cos(la),
                                      Math.cos(rr) - Math.sin(la) * Math.sin(lat));
      out.push([lon / d2r, lat / d2r]);
    }
    return out;
  }
  function setView(v) {
    view = v;
    svg.setAttribute("viewBox", v.join(" "));
    drawOverlay();
  }
  function niceStep(extent) {
    var steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 90];
    for (var i = 0; i < steps.length; i++) if (extent / steps[i] <= 8) return steps[i];
    return 90;
  }
  function drawOverlay() {                 // graticule, labels and markers follow the zoom
    while (gOver.firstChild) gOver.removeChild(gOver.firstChild);
    var w = view[2], h = view[3], rect = svg.getBoundingClientRect();
    var unit = rect.width > 0 ? Math.max(w / rect.width, h / rect.height) : Math.max(w, h) / 600;
    var step = niceStep(h);
    var grat = el("g", {"class": "grat", "stroke-width": unit}, gOver);
    var dmin = Math.max(-90, -(view[1] + h)), dmax = Math.min(90, -view[1]);
    for (var d = Math.ceil(dmin / step) * step; d <= dmax; d += step) {
      el("line", {x1: view[0], x2: view[0] + w, y1: -d, y2: -d}, grat);
      var t = el("text", {x: view[0] + 4 * unit, y: -d - 3 * unit, "font-size": 12 * unit,
                          "class": "glabel"}, gOver);
      t.textContent = "Dec " + (+d.toFixed(2)) + "°";
    }
    var rstep = niceStep(w / Math.max(k, 0.05));
    var xmin = view[0] / k, xmax = (view[0] + w) / k;
    for (var x = Math.ceil(xmin / rstep) * rstep; x <= xmax; x += rstep) {
      el("line", {x1: x * k, x2: x * k, y1: view[1], y2: view[1] + h}, grat);
      var ra = ((ra0 - x) % 360 + 360) % 360;
      var lab = el("text", {x: x * k + 3 * unit, y: view[1] + h - 4 * unit, "font-size": 12 * unit,
                            "class": "glabel"}, gOver);
      lab.textContent = "RA " + (+ra.toFixed(2)) + "°";
    }
    markers.forEach(function (m) {
      if (m.ra === null || m.dec === null) return;
      var p = xy(m.ra, m.dec);
      var c = el("circle", {cx: p[0], cy: p[1], r: 5 * unit, "stroke-width": 1.2 * unit,
                            "class": "marker " + (m.status || ""), "data-alert": m.id,
                            id: "marker-" + m.id}, gOver);
      var tip = el("title", {}, c);
      tip.textContent = "#" + m.rank + " " + m.object_id + " (" + m.status + ")";
      c.addEventListener("click", function () { highlight(m.id, true); });
    });
    box.setAttribute("data-markers", String(gOver.querySelectorAll(".marker").length));
  }
  function highlight(id, scroll) {
    document.querySelectorAll(".hl, tr.highlight").forEach(function (e) {
      e.classList.remove("hl"); e.classList.remove("highlight");
    });
    var m = document.getElementById("marker-" + id), row = document.getElementById("row-" + id);
    if (m) m.classList.add("hl");
    if (row) { row.classList.add("highlight"); if (scroll) row.scrollIntoView({block: "center"}); }
  }
  function draw(geo) {
    ra0 = geo.center[0]; dec0 = geo.center[1];
    k = Math.max(Math.cos(dec0 * Math.PI / 180), 0.2);
    svg = el("svg", {preserveAspectRatio: "xMidYMid meet", role: "img",
                     "aria-label": "sky map of region version " + geo.region_version}, box);
    gCells = el("g", {}, svg);
    gOver = el("g", {}, svg);
    var xs = [], ys = [], n = 0;
    function extend(p) { xs.push(p[0]); ys.push(p[1]); }
    geo.contours.slice().sort(function (a, b) { return b.level - a.level; }).forEach(function (c) {
      var cls = c.level <= 0.5 ? "c50" : "c90";
      var g = el("g", {"class": "contour " + cls, "data-level": c.level}, gCells);
      c.cells.forEach(function (cell) {
        var pts = polygonPoints(cell);
        el("polygon", {points: pts, "vector-effect": "non-scaling-stroke", "stroke-width": 0.6}, g);
        pts.split(" ").forEach(function (s) { var q = s.split(","); extend([+q[0], +q[1]]); });
        n += 1;
      });
    });
    geo.circles.forEach(function (c) {
      var g = el("polygon", {points: polygonPoints(ring(c.ra, c.dec, c.radius_deg)),
                             "class": "ring contour l" + Math.round(c.level * 100),
                             "vector-effect": "non-scaling-stroke", "stroke-width": 1.6,
                             "data-level": c.level}, gCells);
      g.getAttribute("points").split(" ").forEach(function (s) {
        var q = s.split(","); extend([+q[0], +q[1]]);
      });
      n += 1;
    });
    markers.forEach(function (m) { if (m.ra !== null) extend(xy(m.ra, m.dec)); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var pad = Math.max(x1 - x0, y1 - y0, 0.05) * 0.08;
    home = [x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad];
    box.setAttribute("data-contours", String(geo.contours.filter(function (c) {
      return c.cells.length; }).length + geo.circles.length));
    box.setAttribute("data-cells", String(n));
    setView(home);
    box.classList.add("ready");
  }
  function zoom(f, cx, cy) {
    var w = view[2] * f, h = view[3] * f;
    if (cx === undefined) { cx = view[0] + view[2] / 2; cy = view[1] + view[3] / 2; }
    setView([cx - (cx - view[0]) * f, cy - (cy - view[1]) * f, w, h]);
  }
  function toSvg(evt) {
    var r = svg.getBoundingClientRect(), s = Math.max(view[2] / r.width, view[3] / r.height);
    var ox = (r.width * s - view[2]) / 2, oy = (r.height * s - view[3]) / 2;
    return [view[0] - ox + (evt.clientX - r.left) * s, view[1] - oy + (evt.clientY - r.top) * s, s];
  }
  var drag = null;
  box.addEventListener("wheel", function (e) {
    if (!view) return;
    e.preventDefault();
    var p = toSvg(e);
    zoom(e.deltaY > 0 ? 1.25 : 0.8, p[0], p[1]);
  }, {passive: false});
  box.addEventListener("pointerdown", function (e) {
    if (!view || e.target.classList.contains("marker")) return;
    drag = {x: e.clientX, y: e.clientY, v: view.slice(), s: toSvg(e)[2]};
    box.setPointerCapture(e.pointerId);
  });
  box.addEventListener("pointermove", function (e) {
    if (!drag) return;
    setView([drag.v[0] - (e.clientX - drag.x) * drag.s, drag.v[1] - (e.clientY - drag.y) * drag.s,
             drag.v[2], drag.v[3]]);
  });
  box.addEventListener("pointerup", function () { drag = null; });
  document.getElementById("map-reset").addEventListener("click", function () { setView(home); });
  document.getElementById("map-in").addEventListener("click", function () { zoom(0.7); });
  document.getElementById("map-out").addEventListener("click", function () { zoom(1.4); });
  document.querySelectorAll("#candidates tbody tr[data-alert]").forEach(function (row) {
    row.addEventListener("mouseenter", function () { highlight(row.getAttribute("data-alert")); });
  });
  var embedded = document.getElementById("map-data");
  var geo = embedded ? JSON.parse(embedded.textContent || "null") : null;
  if (geo) { draw(geo); return; }
  fetch(box.getAttribute("data-map-url"))
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(draw)
    .catch(function (err) { box.textContent = "map unavailable: " + err; box.classList.add("failed"); });
})();
