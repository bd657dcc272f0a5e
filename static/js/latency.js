// Latency page charts (uPlot): percentiles over time, histogram, throughput.
// Colours come from the CSS custom properties at draw time; a theme change redraws.
// Data comes from the page's JSON endpoint (data-url), polled every 5 s; the
// table above refreshes itself through htmx. No inline scripts: the CSP.
(function () {
  "use strict";

  var seriesBox = document.getElementById("chart-series");
  var histogramBox = document.getElementById("chart-histogram");
  var throughputBox = document.getElementById("chart-throughput");
  if (!seriesBox || typeof window.uPlot === "undefined") return;

  var url = seriesBox.getAttribute("data-url");
  var charts = {};
  var lastData = null; // redrawn with the new colours when the theme changes
  window.warrenLatencyCharts = charts; // for the browser tests and the curious

  // Colours from the CSS custom properties (warren.css), read at draw time.
  function colour(name, fallback) {
    return window.warrenTheme ? window.warrenTheme.color(name, fallback) : fallback;
  }

  // uPlot's axes draw on a canvas: they get the theme's text and grid colours.
  function themed(axis) {
    axis.stroke = colour("--chart-axis", "#475467");
    axis.grid = { stroke: colour("--chart-grid", "rgba(29, 35, 48, .09)"), width: 1 };
    axis.ticks = { stroke: colour("--chart-grid", "rgba(29, 35, 48, .09)"), width: 1 };
    return axis;
  }
  var EVERY_MS = 5000;
  var HEIGHT = 230;

  function width(box) {
    return Math.max(280, box.clientWidth - 4);
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    if (value < 10) return value.toFixed(2) + " ms";
    if (value < 100) return value.toFixed(1) + " ms";
    return Math.round(value).toLocaleString("en") + " ms";
  }

  // Axis labels stay short: 250 ms, 1.5 s, 32 s.
  function axisMs(value) {
    if (value === null || value === undefined) return "";
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1).replace(/\.0$/, "") + " s";
    if (value >= 1) return Math.round(value * 10) / 10 + " ms";
    return value.toPrecision(2) + " ms";
  }

  function rate(value) {
    if (value === null || value === undefined) return "–";
    return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString("en");
  }

  function empty(box, text) {
    if (charts[box.id]) {
      charts[box.id].destroy();
      delete charts[box.id];
    }
    box.textContent = "";
    var note = document.createElement("p");
    note.className = "chart-empty";
    note.textContent = text;
    box.appendChild(note);
  }

  function draw(box, options, data) {
    var chart = charts[box.id];
    if (chart && chart.series.length === options.series.length) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    box.textContent = "";
    options.width = width(box);
    options.height = HEIGHT;
    options.axes = (options.axes || [{}, {}]).map(themed);
    charts[box.id] = new window.uPlot(options, data, box);
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // Times in UTC, like every other page: 14:05, 14:05:30 when ticks are closer than
  // a minute, 11-25 14:05 over several days.
  function clock(seconds, withDay, withSeconds) {
    var d = new Date(seconds * 1000);
    var time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (withSeconds) time += ":" + pad(d.getUTCSeconds());
    return withDay ? pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + time : time;
  }

  function timeAxis() {
    return {
      space: 70,
      values: function (u, ticks) {
        var span = u.scales.x.max - u.scales.x.min;
        var step = ticks.length > 1 ? ticks[1] - ticks[0] : 60;
        return ticks.map(function (tick) { return clock(tick, span > 86400, step < 60); });
      },
    };
  }

  function timeSeries() {
    return {
      value: function (u, v) {
        if (v === null || v === undefined) return "–";
        return clock(v, true, true) + " UTC";
      },
    };
  }

  function line(label, color, format) {
    return {
      label: label,
      stroke: color,
      width: 1.8,
      points: { show: true, size: 5, fill: color },
      value: function (u, v) { return format(v); },
    };
  }

  function hasValues(list) {
    for (var i = 0; i < list.length; i++) if (list[i] !== null && list[i] !== 0) return true;
    return false;
  }

  function drawSeries(series) {
    if (!hasValues(series.p50) && !hasValues(series.p99)) {
      empty(seriesBox, "No answered calls in this window.");
      return;
    }
    draw(seriesBox, {
      scales: { x: { time: true }, y: { distr: 3 } },
      axes: [timeAxis(), { values: function (u, ticks) { return ticks.map(axisMs); }, size: 64 }],
      series: [
        timeSeries(),
        line("p50", colour("--series-green", "#1f8a4c"), ms),
        line("p95", colour("--series-orange", "#f26b1d"), ms),
        line("p99", colour("--series-red", "#c0392b"), ms),
      ],
    }, [series.t, series.p50, series.p95, series.p99]);
  }

  function drawThroughput(series) {
    if (!hasValues(series.calls_per_s)) {
      empty(throughputBox, "No calls in this window.");
      return;
    }
    var step = series.step_s || 1;
    var timeoutsPerS = series.timeouts.map(function (n) { return n / step; });
    draw(throughputBox, {
      scales: { x: { time: true } },
      axes: [timeAxis(), { values: function (u, ticks) { return ticks.map(rate); }, size: 60 }],
      series: [
        timeSeries(),
        { label: "calls/s", stroke: colour("--series-blue", "#2563eb"), width: 1.8, value: function (u, v) { return rate(v); } },
        { label: "timeouts/s", stroke: colour("--series-red", "#c0392b"), width: 1.8, value: function (u, v) { return rate(v); } },
      ],
    }, [series.t, series.calls_per_s, timeoutsPerS]);
  }

  function drawHistogram(histogram) {
    if (!histogram.counts.length) {
      empty(histogramBox, "No answered calls in this window.");
      return;
    }
    var edges = histogram.edges_ms;
    var xs = edges.map(function (_, index) { return index; });
    var bars = window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.85, 60] }) : null;
    draw(histogramBox, {
      scales: { x: { time: false, range: function () { return [-0.5, xs.length - 0.5]; } } },
      axes: [
        {
          values: function (u, ticks) {
            return ticks.map(function (tick) {
              var index = Math.round(tick);
              return index >= 0 && index < edges.length && index === tick ? ms(edges[index]) : "";
            });
          },
          space: 60,
        },
        { size: 60 },
      ],
      series: [
        { value: function (u, v) { return v === null || edges[v] === undefined ? "–" : "≥ " + ms(edges[v]); } },
        { label: "calls", stroke: colour("--series-orange", "#f26b1d"), fill: colour("--series-orange", "#f26b1d") + "8c", paths: bars, points: { show: false } },
      ],
    }, [xs, histogram.counts]);
  }

  function drawAll(data) {
    drawSeries(data.series);
    drawThroughput(data.series);
    drawHistogram(data.histogram);
  }

  // A new theme: the charts are drawn again, from scratch, in its colours.
  document.addEventListener("warren:theme", function () {
    Object.keys(charts).forEach(function (id) {
      charts[id].destroy();
      delete charts[id];
    });
    if (lastData) drawAll(lastData);
  });

  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        lastData = data;
        drawAll(data);
      })
      .catch(function () {
        [seriesBox, histogramBox, throughputBox].forEach(function (box) {
          if (!charts[box.id]) empty(box, "Figures unavailable right now; retrying.");
        });
      })
      .finally(function () { busy = false; });
  }

  window.addEventListener("resize", function () {
    [seriesBox, histogramBox, throughputBox].forEach(function (box) {
      var chart = charts[box.id];
      if (chart) chart.setSize({ width: width(box), height: HEIGHT });
    });
  });

  refresh();
  window.setInterval(refresh, EVERY_MS);
})();
