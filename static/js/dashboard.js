/* Quantsite dashboard: draws the figures each page embeds as JSON, sorts tables, and
   applies the page's JSON in place when the live websocket says the portfolio moved.
   No dependencies besides Plotly (served from /static, never a CDN). */
(function () {
  "use strict";

  // The mode bar shows on hover (Plotly's default) on a wide screen; on a phone, where a tap
  // is a hover and the bar sits on the chart's title, it is off (pinch and double-tap still
  // zoom and reset). Read at each draw, so a resized window gets the right one.
  var NARROW = "(max-width: 600px)";

  function isNarrow() {
    return Boolean(window.matchMedia && window.matchMedia(NARROW).matches);
  }

  function plotConfig() {
    return { responsive: true, displaylogo: false, displayModeBar: isNarrow() ? false : "hover" };
  }

  // On a phone a legend of many series wraps to one entry a line and took most of the
  // chart's height (a 250 px rolling chart kept about 40 px of plot): there the legend is
  // set in two columns in a smaller font, and the chart grows by the legend's rows, so the
  // plot keeps the height it has on a wide screen.
  var LEGEND_ROW_PX = 17;

  function legendEntries(fig) {
    if (fig.layout && fig.layout.showlegend === false) return 0;
    return (fig.data || []).filter(function (t) {
      return t.showlegend !== false && t.name;
    }).length;
  }

  // What the legend rows do not foresee (rotated category names, a panel that shares the
  // chart with others): once drawn, a chart whose data got less than MIN_PLOT_PX of height
  // (its first y axis, a fraction of the plot when subplots share it) grows by what is
  // missing. Plotly's _fullLayout is where it reports the axis it drew.
  var MIN_PLOT_PX = 130;

  function ensurePlotHeight(div) {
    var full = div._fullLayout;
    if (!full || !full.yaxis || !full._has || !full._has("cartesian")) return;
    var domain = full.yaxis.domain || [0, 1];
    var missing = (MIN_PLOT_PX - full.yaxis._length) / Math.max(domain[1] - domain[0], 0.1);
    if (missing < 2) return;
    var height = Math.ceil(div.getBoundingClientRect().height + missing);
    div.style.height = height + "px";
    if (full.height && div.layout && div.layout.height) {
      window.Plotly.relayout(div, { height: height });
    } else {
      window.Plotly.Plots.resize(div);
    }
  }

  function draw(plot, div, fig) {
    var drawn = plot.call(window.Plotly, div, fig.data, figureLayout(fig, div), plotConfig());
    if (drawn && drawn.then) drawn.then(function () { ensurePlotHeight(div); });
    return drawn;
  }

  function figureLayout(fig, div) {
    var layout = withRevision(fig.layout, div);
    if (!div.dataset.baseHeight) {
      var own = layout.height || div.getBoundingClientRect().height;
      div.dataset.baseHeight = String(Math.round(own || 0));
    }
    var base = Number(div.dataset.baseHeight);
    var entries = legendEntries(fig);
    var height = base;
    if (isNarrow() && entries > 2) {
      layout.legend = Object.assign({}, layout.legend, {
        font: { size: 10 }, entrywidth: 0.5, entrywidthmode: "fraction", tracegroupgap: 0
      });
      height = base + Math.ceil(entries / 2) * LEGEND_ROW_PX;
    }
    if (layout.height) layout.height = height;
    // the stylesheet's height unless the figure or its legend asks for another
    div.style.height = layout.height || height !== base ? height + "px" : "";
    return layout;
  }

  // A constant uirevision per chart: Plotly.react then keeps the user's zoom, pan and
  // legend toggles when a live update redraws the figure.
  function withRevision(layout, div) {
    var out = Object.assign({}, layout || {});
    out.uirevision = div.id || div.dataset.figure;
    return out;
  }

  function drawFigures() {
    document.querySelectorAll("[data-figure]").forEach(function (div) {
      var source = document.getElementById(div.dataset.figure);
      if (!source || !window.Plotly) return;
      var fig = JSON.parse(source.textContent);
      draw(window.Plotly.newPlot, div, fig);
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
      }, plotConfig());
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

  // The sort the user chose per table (keyed by the table's id): a live update that
  // replaces the table (a fragment, or the whole <main>) sorts the fresh one the same way.
  var sortChosen = {};

  function sortBy(table, index, descending) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    var th = headers[index];
    var body = table.tBodies[0];
    if (!th || !body) return;
    var numeric = th.dataset.type === "num";
    Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var k1 = cellKey(r1, index, numeric), k2 = cellKey(r2, index, numeric);
      var order = k1 < k2 ? -1 : k1 > k2 ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      th.classList.add("sort");
      th.setAttribute("tabindex", "0");
      var sort = function () {
        var descending = th.getAttribute("aria-sort") !== "descending";
        if (table.id) sortChosen[table.id] = { index: index, descending: descending };
        sortBy(table, index, descending);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
    var chosen = table.id && sortChosen[table.id];
    if (chosen) sortBy(table, chosen.index, chosen.descending);
  }

  function linkRows() {
    document.querySelectorAll("tr.link-row").forEach(function (row) {
      if (row.dataset.linked) return; // rows a live update left in place keep their one listener
      row.dataset.linked = "1";
      row.addEventListener("click", function (event) {
        if (event.target.closest("a")) return;
        window.location.href = row.dataset.href;
      });
    });
  }

  // Live updates. The websocket says "version N of portfolio <id> is committed" (at most
  // once per version); the page then fetches its own JSON (?format=json: the same
  // assembler and template as the HTML) and applies it in place: marked fragments
  // replaced, figures redrawn with Plotly.react (uirevision keeps zoom and legend
  // toggles), a short notice shown. Never a reload.
  function pageJsonUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("format", "json");
    url.hash = "";
    return url.toString();
  }

  function fragmentTarget(key) {
    if (key.indexOf("table:") === 0) {
      var table = document.getElementById(key.slice(6));
      return table ? table.closest(".table-wrap") : null;
    }
    return document.querySelector('[data-live="' + key + '"]');
  }

  function applyFragments(fragments) {
    Object.keys(fragments || {}).forEach(function (key) {
      var old = fragmentTarget(key);
      if (!old) return;
      var holder = document.createElement("div");
      holder.innerHTML = fragments[key];
      var fresh = holder.firstElementChild;
      if (!fresh) return;
      old.replaceWith(fresh);
      fresh.querySelectorAll("table.sortable").forEach(makeSortable);
      if (fresh.matches("table.sortable")) makeSortable(fresh);
    });
    linkRows();
  }

  function applyFigures(figures) {
    if (!window.Plotly) return;
    Object.keys(figures || {}).forEach(function (id) {
      var div = document.querySelector('[data-figure="' + id + '"]');
      if (!div) return;
      var fig = figures[id];
      var source = document.getElementById(id);
      if (source) source.textContent = JSON.stringify(fig);
      draw(window.Plotly.react, div, fig);
    });
  }

  // Does the open page have every fragment and chart of the JSON? Not when its structure
  // changed (its first bar, a new strategy's chart): then the whole <main> is swapped.
  function sameStructure(page) {
    var fragments = Object.keys(page.fragments || {}).every(function (k) { return fragmentTarget(k); });
    return fragments && Object.keys(page.figures || {}).every(function (id) {
      return document.querySelector('[data-figure="' + id + '"]');
    });
  }

  function applyWhole(page) {
    var main = document.getElementById("page-main");
    if (!main || page.main === undefined) return false;
    main.innerHTML = page.main;
    drawFigures();
    main.querySelectorAll("table.sortable").forEach(makeSortable);
    linkRows();
    return true;
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  // A version with a new bar date: that bar's activity. The same date again: an
  // operator changed the configuration (a pause, a limit, a rebalance request).
  function showNotice(page, shownAsOf) {
    var notice = document.getElementById("live-notice");
    if (!notice) return;
    var bar = page.bar;
    if (bar && page.as_of !== shownAsOf) {
      notice.textContent = bar.date + ": " + plural(bar.trades, "trade") + ", " +
        plural(bar.violations, "violation");
    } else {
      notice.textContent = "Configuration changed" +
        (page.as_of ? " (still as of " + page.as_of + ")" : "");
    }
    notice.hidden = false;
  }

  function live() {
    var id = document.body.dataset.portfolio;
    var status = document.getElementById("live-status");
    if (!id || !window.WebSocket) return;
    var version = parseInt(document.body.dataset.version || "0", 10);
    var shownAsOf = document.body.dataset.asOf || null;
    var wanted = version, fetching = false, delay = 1000;
    function setStatus(text) { if (status) status.textContent = text; }
    function getPage(whole) {
      var url = pageJsonUrl() + (whole ? "&whole=1" : "");
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
    }
    function refresh() {
      if (fetching || wanted <= version) return;
      fetching = true;
      getPage(false)
        .then(function (page) {
          return sameStructure(page) ? page : getPage(true);
        })
        .then(function (page) {
          if (page.version >= version) {
            if (!applyWhole(page)) {
              applyFragments(page.fragments);
              applyFigures(page.figures);
            }
            version = page.version;
            document.body.dataset.version = String(version);
            showNotice(page, shownAsOf);
            shownAsOf = page.as_of;
            setStatus("live, " + (page.as_of || "no bar yet"));
          }
        })
        .catch(function () { setStatus("live (refresh failed, retrying)"); })
        .then(function () {
          fetching = false;
          // a version that arrived while fetching (or a failed fetch): go again
          if (wanted > version) setTimeout(refresh, 500);
        });
    }
    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + "/ws/portfolio/" + id +
        "/?since=" + version);
      socket.onopen = function () { delay = 1000; setStatus("live"); };
      socket.onmessage = function (message) {
        var event = JSON.parse(message.data);
        if (event.type !== "snapshot.update") return;
        setStatus(event.date ? "updating to " + event.date : "updating");
        wanted = Math.max(wanted, event.version);
        refresh();
      };
      socket.onclose = function () {
        setStatus("offline, reconnecting");
        setTimeout(connect, delay); // reconnects with ?since=<version shown>: catches up
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  // Update now (staff): POST /api/update/ (202 with the run, 409 while one is in flight),
  // then poll the run until it ends. The new bar itself arrives through the websocket.
  var RUN_POLL_MS = 1000;
  var RUN_DONE = { success: true, failed: true, skipped: true };

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function runText(run) {
    if (run.status === "success") {
      var n = run.dates_applied || 0;
      if (!n) return "update done: nothing new to apply";
      return "update done: " + plural(n, "bar") + (run.last_date ? " to " + run.last_date : "");
    }
    if (run.status === "failed") return "update failed: " + (run.error || "see the run " + run.id);
    if (run.status === "skipped") return "update skipped" + (run.error ? ": " + run.error : "");
    return "update " + run.status + "…";
  }

  function updateNow() {
    var button = document.getElementById("update-now");
    var status = document.getElementById("update-status");
    if (!button) return;
    function say(text) { if (status) status.textContent = text; }
    function follow(url) {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (run) {
          say(runText(run));
          if (RUN_DONE[run.status]) { button.disabled = false; return; }
          setTimeout(function () { follow(url); }, RUN_POLL_MS);
        })
        .catch(function (e) { say("update: lost track of the run (" + e.message + ")"); button.disabled = false; });
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      say("update requested…");
      fetch(button.dataset.url, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" }
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 202) { say("update queued (run " + body.run + ")"); follow(body.url || "/api/runs/" + body.run + "/"); }
          else if (r.status === 409) { say("an update is already running (run " + body.run + ")"); if (body.run) follow("/api/runs/" + body.run + "/"); else button.disabled = false; }
          else if (r.status === 403) { say("not allowed: staff only"); button.disabled = false; }
          else { say("update failed to start: " + (body.detail || "HTTP " + r.status)); button.disabled = false; }
        });
      }).catch(function (e) { say("update failed to start: " + e.message); button.disabled = false; });
    });
  }

  // A filter control marked data-autosubmit submits its form when changed (no inline
  // onchange: the CSP allows no inline handler). Delegated from the document, so a control
  // in a <main> a live update replaced keeps working.
  function autoSubmit() {
    document.addEventListener("change", function (event) {
      var control = event.target.closest && event.target.closest("[data-autosubmit]");
      if (control && control.form) control.form.submit();
    });
  }

  autoSubmit();

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures();
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    linkRows();
    live();
    updateNow();
  });
})();
