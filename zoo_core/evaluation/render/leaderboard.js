(function () {
  "use strict";
  function value(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell || !cell.hasAttribute("data-value")) return null;
    var raw = cell.getAttribute("data-value");
    if (!numeric) return raw;
    var x = parseFloat(raw);
    return isFinite(x) ? x : null;
  }
  function sortTable(table, key, dir) {
    var heads = table.tHead.rows[0].cells, index = -1;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-key") === key) index = i;
    }
    if (index < 0) return false;
    var numeric = heads[index].getAttribute("data-type") === "num";
    var sign = dir === "desc" ? -1 : 1, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row) {
      return {row: row, v: value(row, index, numeric), order: +row.getAttribute("data-order")};
    });
    rows.sort(function (a, b) {
      if (a.v === null || b.v === null) {
        return a.v === b.v ? a.order - b.order : (a.v === null ? 1 : -1);
      }
      var c = numeric ? a.v - b.v : a.v.localeCompare(b.v, undefined, {numeric: true});
      return c !== 0 ? sign * c : a.order - b.order;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    for (var j = 0; j < heads.length; j++) {
      var state = j !== index ? "none" : (dir === "desc" ? "descending" : "ascending");
      heads[j].setAttribute("aria-sort", state);
    }
    table.setAttribute("data-sort", key + ":" + dir);
    return true;
  }
  function fromFragment() {
    var parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf("sort=") !== 0) continue;
      var spec = decodeURIComponent(parts[i].slice(5)).split(":");
      var table = document.getElementById(spec[0]);
      if (table && table.tHead && spec.length >= 2) {
        sortTable(table, spec[1], spec[2] === "desc" ? "desc" : "asc");
      }
    }
  }
  function onClick(event) {
    var th = event.target.closest("th[data-key]");
    if (!th) return;
    var table = th.closest("table"), key = th.getAttribute("data-key");
    var current = (table.getAttribute("data-sort") || "").split(":");
    var dir = th.getAttribute("data-first") || "asc";
    if (current[0] === key) dir = current[1] === "desc" ? "asc" : "desc";
    sortTable(table, key, dir);
    try {
      var spec = table.id + ":" + key + ":" + dir;
      history.replaceState(null, "", "#sort=" + encodeURIComponent(spec));
    } catch (e) { /* a file: URL may refuse; the sort is done anyway */ }
  }
  var tables = document.querySelectorAll("table.board");
  function onKey(event) {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onClick(event); }
  }
  for (var k = 0; k < tables.length; k++) {
    tables[k].tHead.addEventListener("click", onClick);
    tables[k].tHead.addEventListener("keydown", onKey);
  }
  window.addEventListener("hashchange", fromFragment);
  fromFragment();
})();
