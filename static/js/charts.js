// Charts over time on the Overview, queue and exchange pages (uPlot).
// Each box <div class="timechart" data-url="…" data-chart="rates"> is drawn from
// the page's JSON (console/charts.py), fetched once per URL and polled every
// 5 s. Colours come from CSS custom properties (window.warrenTheme.color), so a
// theme change redraws the charts in the new colours; every series also has a
// dash pattern of its own, so lines stay apart without colour. No inline
// scripts: the CSP.
(function () {
  "use strict";

  if (typeof window.uPlot === "undefined") return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll(".timechart[data-url]"));
  if (!boxes.length) return;

  var EVERY_MS = 5000;
  var HEIGHT = 220;
  var charts = {}; // box id -> uPlot
  var lastData = {}; // url -> the last answer, to redraw on a theme change

  function colour(name, fallback) {
    return window.warrenTheme ? window.warrenTheme.color(name, fallback) : fallback;
  }

  function width(box) {
    return Math.max(260, box.clientWidth - 2);
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // Times in UTC, like every other page.
  function clock(seconds, withDay, withSeconds) {
    var d = new Date(seconds * 1000);
    var time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (withSeconds) time += ":" + pad(d.getUTCSeconds());
    return withDay ? pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + time : time;
  }

  function number(value) {
    if (value === null || value === undefined) return "–";
    if (value !== 0 && Math.abs(value) < 10) return value.toFixed(2).replace(/\.?0+$/, "");
    if (Math.abs(value) < 100) return value.toFixed(1).replace(/\.0$/, "");
    return Math.round(value).toLocaleString("en");
  }

  function axisNumber(value) {
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1).replace(/\.0$/, "") + "M";
    if (Math.abs(value) >= 1e4) return Math.round(value / 1e3) + "k";
    return number(value);
  }

  function latest(values) {
    for (var i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
    return null;
  }

  function empty(box, text) {
    if (charts[box.id]) {
      charts[box.id].destroy();
      delete charts[box.id];
    }
    box.textContent = "";
    var note = document.createElement("p");
    note.className = "chart-empty muted";
    note.textContent = text;
    box.appendChild(note);
  }

  function options(box, chart) {
    var axis = colour("--chart-axis", "#475467");
    var grid = colour("--chart-grid", "rgba(29, 35, 48, .09)");
    var unit = chart.unit;
    var series = [{
      label: "time (UTC)",
      value: function (u, v, si, idx) {
        if (idx === null || idx === undefined) return "latest";
        return v === null || v === undefined ? "–" : clock(v, true, true);
      },
    }];
    chart.series.forEach(function (line) {
      var stroke = colour(line.colour, "#8a94a6");
      series.push({
        label: line.label,
        stroke: stroke,
        dash: line.dash && line.dash.length ? line.dash : undefined,
        width: 2,
        spanGaps: false,
        points: { show: chart.t.length < 40, size: 4, fill: stroke, stroke: stroke },
        // Away from the cursor the legend shows each line's latest value.
        value: function (u, v, si, idx) {
          if (idx === null || idx === undefined) v = latest(u.data[si]);
          return number(v) + " " + unit;
        },
      });
    });
    return {
      width: width(box),
      height: HEIGHT,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      axes: [
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          space: 64,
          values: function (u, ticks) {
            var span = u.scales.x.max - u.scales.x.min;
            var step = ticks.length > 1 ? ticks[1] - ticks[0] : 60;
            return ticks.map(function (tick) { return clock(tick, span > 86400, step < 60); });
          },
        },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          size: 56,
          label: unit,
          labelSize: 18,
          values: function (u, ticks) { return ticks.map(axisNumber); },
        },
      ],
      series: series,
    };
  }

  function draw(box, chart) {
    if (!chart || chart.empty) {
      empty(box, box.getAttribute("data-empty") || "No samples from the broker yet.");
      return;
    }
    var data = [chart.t].concat(chart.series.map(function (line) { return line.values; }));
    var current = charts[box.id];
    var labels = chart.series.map(function (line) { return line.label; }).join("|");
    if (current && current.warrenLabels === labels) {
      current.setData(data);
      return;
    }
    if (current) current.destroy();
    box.textContent = "";
    current = new window.uPlot(options(box, chart), data, box);
    current.warrenLabels = labels;
    charts[box.id] = current;
  }

  function byUrl() {
    var groups = {};
    boxes.forEach(function (box) {
      var url = box.getAttribute("data-url");
      (groups[url] = groups[url] || []).push(box);
    });
    return groups;
  }

  var groups = byUrl();
  var busy = {};

  function drawAll(url) {
    var answer = lastData[url];
    if (!answer) return;
    groups[url].forEach(function (box) { draw(box, answer.charts[box.getAttribute("data-chart")]); });
  }

  function refresh() {
    if (document.hidden) return;
    Object.keys(groups).forEach(function (url) {
      if (busy[url]) return;
      busy[url] = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) throw new Error(body && body.error ? body.error : "HTTP " + response.status);
            return body;
          });
        })
        .then(function (answer) {
          lastData[url] = answer;
          drawAll(url);
        })
        .catch(function (error) {
          groups[url].forEach(function (box) {
            if (!charts[box.id]) empty(box, "No figures right now (" + error.message + "); retrying every 5 s.");
          });
        })
        .finally(function () { busy[url] = false; });
    });
  }

  // A new theme: the same data drawn again in the theme's colours.
  document.addEventListener("warren:theme", function () {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    Object.keys(groups).forEach(drawAll);
  });

  window.addEventListener("resize", function () {
    boxes.forEach(function (box) {
      var chart = charts[box.id];
      if (chart) chart.setSize({ width: width(box), height: HEIGHT });
    });
  });

  refresh();
  window.setInterval(refresh, EVERY_MS);
})();
