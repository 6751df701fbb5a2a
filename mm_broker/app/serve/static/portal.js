// mm_broker portal: sortable tables and live updates (server-sent events). No framework.
"use strict";
(function () {
  function cellValue(row, i, numeric) {
    var cell = row.cells[i];
    if (!cell) return numeric ? Infinity : "";
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw);
    return isNaN(v) ? Infinity : v;
  }
  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, i) {
      th.title = "sort";
      th.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "num";
        var asc = th.getAttribute("data-sorted") !== "asc";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-sorted"); });
        th.setAttribute("data-sorted", asc ? "asc" : "desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, i, numeric), y = cellValue(b, i, numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);

  // Live updates: the events table is fetched again when the store changes.
  if (!window.EventSource) return;
  var target = document.getElementById("events-table");
  var badge = document.getElementById("live");
  var source = new EventSource("/api/v1/stream");
  source.addEventListener("hello", function () { if (badge) { badge.hidden = false; } });
  source.addEventListener("change", function () {
    if (target) {
      var sep = location.search ? "&" : "?";
      fetch(location.pathname + location.search + sep + "fragment=true")
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            target.innerHTML = html;
            target.setAttribute("data-updated", new Date().toISOString());
          }
        });
    } else if (badge) {
      badge.textContent = "new data: reload";
      badge.style.background = "#9a6700";
    }
  });
  source.onerror = function () { if (badge) { badge.hidden = true; } };
})();
