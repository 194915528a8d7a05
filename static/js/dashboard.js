/* Quantsite dashboard: draws the figures each page embeds as JSON, sorts tables, and
   reloads the page's data when the live websocket says the portfolio moved.
   No dependencies besides Plotly (served from /static, never a CDN). */
(function () {
  "use strict";

  var PLOT_CONFIG = { responsive: true, displaylogo: false };
  var RELOAD_MIN_INTERVAL_MS = 15000; // at most one refresh per 15 s, however fast bars arrive

  function drawFigures() {
    document.querySelectorAll("[data-figure]").forEach(function (div) {
      var source = document.getElementById(div.dataset.figure);
      if (!source || !window.Plotly) return;
      var fig = JSON.parse(source.textContent);
      if (fig.layout && fig.layout.height) div.style.height = fig.layout.height + "px";
      window.Plotly.newPlot(div, fig.data, fig.layout, PLOT_CONFIG);
      if (fig.scatter) linkScatter(div, fig.scatter);
    });
  }

  // Correlation heatmap: a click on cell (a, b) draws the two books' daily returns.
  function linkScatter(div, scatter) {
    var target = document.getElementById("correlation-scatter");
    if (!target) return;
    div.on("plotly_click", function (event) {
      var point = event.points[0];
      var a = point.x, b = point.y;
      var xs = scatter.returns[a], ys = scatter.returns[b];
      window.Plotly.newPlot(target, [{
        type: "scatter", mode: "markers", x: xs, y: ys, text: scatter.dates,
        marker: { size: 4, opacity: 0.6 },
        hovertemplate: "%{text}<br>" + a + " %{x:.2%}<br>" + b + " %{y:.2%}<extra></extra>"
      }], {
        title: { text: a + " vs " + b + ": daily returns (corr " + Number(point.z).toFixed(3) + ")", font: { size: 14 } },
        xaxis: { title: { text: a }, tickformat: ".1%" },
        yaxis: { title: { text: b }, tickformat: ".1%" },
        margin: { l: 60, r: 15, t: 40, b: 50 }, hovermode: "closest"
      }, PLOT_CONFIG);
    });
  }

  // Sortable tables: click a header; numbers sort by data-value, text by content.
  function cellKey(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) return numeric ? -Infinity : "";
    var raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var value = parseFloat(String(raw).replace(/[,%]/g, ""));
    return isNaN(value) ? -Infinity : value;
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      th.classList.add("sort");
      th.setAttribute("tabindex", "0");
      var sort = function () {
        var numeric = th.dataset.type === "num";
        var descending = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var k1 = cellKey(r1, index, numeric), k2 = cellKey(r2, index, numeric);
          var order = k1 < k2 ? -1 : k1 > k2 ? 1 : 0;
          return descending ? -order : order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  function linkRows() {
    document.querySelectorAll("tr.link-row").forEach(function (row) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a")) return;
        window.location.href = row.dataset.href;
      });
    });
  }

  // Live updates: group portfolio.<id> pushes snapshot.update after each committed bar.
  function live() {
    var id = document.body.dataset.portfolio;
    var status = document.getElementById("live-status");
    if (!id || !window.WebSocket) return;
    var delay = 1000, lastReload = Date.now(), pending = null;
    function setStatus(text) { if (status) status.textContent = text; }
    function refresh() {
      if (pending) return;
      var wait = Math.max(0, lastReload + RELOAD_MIN_INTERVAL_MS - Date.now());
      pending = setTimeout(function () { window.location.reload(); }, wait);
    }
    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + "/ws/portfolio/" + id + "/");
      socket.onopen = function () { delay = 1000; setStatus("live"); };
      socket.onmessage = function (message) {
        var event = JSON.parse(message.data);
        if (event.type === "snapshot.update") { setStatus("updated " + event.date); refresh(); }
      };
      socket.onclose = function () {
        setStatus("offline, reconnecting");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures();
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    linkRows();
    live();
  });
})();
