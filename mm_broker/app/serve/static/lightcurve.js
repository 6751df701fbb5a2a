// mm_broker portal: an object's light curve in SVG (detections with error bars, upper
// limits as open triangles, one colour per band, trigger times as dashed lines).
"use strict";
(function () {
  var box = document.getElementById("lightcurve");
  if (!box) return;
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("lc-data").textContent);
  var COLORS = {g: "#1e8f3a", r: "#c62828", i: "#6a1b9a", u: "#1565c0", z: "#5d4037", y: "#455a64"};
  var W = 640, H = 320, L = 56, R = 14, T = 16, B = 40;
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var a in attrs) e.setAttribute(a, attrs[a]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function jd(iso) { return Date.parse(iso) / 86400000 + 2440587.5; }
  var pts = data.points, trig = data.triggers.map(function (t) { return {id: t.event_id, jd: jd(t.time)}; });
  if (!pts.length) { box.textContent = "no photometry"; return; }
  var t0 = trig.length ? trig[0].jd : pts[0].jd;
  var xs = pts.map(function (p) { return p.jd - t0; }).concat(trig.map(function (t) { return t.jd - t0; }));
  var ms = pts.map(function (p) { return p.mag; });
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
  var m0 = Math.min.apply(null, ms), m1 = Math.max.apply(null, ms);
  var dx = Math.max(x1 - x0, 0.5) * 0.06, dm = Math.max(m1 - m0, 0.5) * 0.1;
  x0 -= dx; x1 += dx; m0 -= dm; m1 += dm;
  function X(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
  function Y(m) { return T + (m - m0) / (m1 - m0) * (H - T - B); }   // bright at the top
  var svg = el("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "light curve"}, box);
  el("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fbfcfe", stroke: "#c9d1da"}, svg);
  function ticks(a, b, n) {
    var raw = (b - a) / n, p = Math.pow(10, Math.floor(Math.log10(raw))), s = p;
    [1, 2, 5, 10].some(function (f) { s = f * p; return raw <= s; });
    var out = []; for (var v = Math.ceil(a / s) * s; v <= b; v += s) out.push(+v.toFixed(6));
    return out;
  }
  ticks(x0, x1, 6).forEach(function (v) {
    el("line", {x1: X(v), x2: X(v), y1: H - B, y2: H - B + 4, stroke: "#555"}, svg);
    el("text", {x: X(v), y: H - B + 16, "text-anchor": "middle", "font-size": 11}, svg).textContent = v;
  });
  ticks(m0, m1, 5).forEach(function (v) {
    el("line", {x1: L - 4, x2: L, y1: Y(v), y2: Y(v), stroke: "#555"}, svg);
    el("text", {x: L - 7, y: Y(v) + 4, "text-anchor": "end", "font-size": 11}, svg).textContent = v;
  });
  el("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 12}, svg)
    .textContent = trig.length ? "days since the trigger of " + trig[0].id : "days since the first point";
  el("text", {x: 14, y: (T + H - B) / 2, "font-size": 12, "text-anchor": "middle",
              transform: "rotate(-90 14 " + (T + H - B) / 2 + ")"}, svg).textContent = "magnitude (AB)";
  trig.forEach(function (t) {
    el("line", {x1: X(t.jd - t0), x2: X(t.jd - t0), y1: T, y2: H - B, stroke: "#333",
                "stroke-dasharray": "5 4", "class": "trigger"}, svg);
    el("text", {x: X(t.jd - t0) + 3, y: T + 12, "font-size": 10, fill: "#333"}, svg).textContent = t.id;
  });
  var bands = {};
  pts.forEach(function (p) {
    var c = COLORS[p.band] || "#333", x = X(p.jd - t0), y = Y(p.mag);
    bands[p.band] = c;
    if (p.upper_limit) {
      el("path", {d: "M" + (x - 4) + "," + (y - 3) + "h8l-4,7z", fill: "none", stroke: c,
                  "class": "limit band-" + p.band}, svg);
    } else {
      if (p.mag_err) el("line", {x1: x, x2: x, y1: Y(p.mag - p.mag_err), y2: Y(p.mag + p.mag_err),
                                 stroke: c}, svg);
      el("circle", {cx: x, cy: y, r: 3.5, fill: c, "class": "detection band-" + p.band}, svg);
    }
  });
  var lx = L + 8;
  Object.keys(bands).sort().forEach(function (b) {
    el("circle", {cx: lx, cy: H - B - 10, r: 4, fill: bands[b]}, svg);
    el("text", {x: lx + 7, y: H - B - 6, "font-size": 11}, svg).textContent = b;
    lx += 30;
  });
  box.setAttribute("data-points", String(pts.length));
})();
