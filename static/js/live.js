// Live flows and the live message tail: one WebSocket, server-rendered rows.
// The server sends the pages' own row partials as HTML; this file only puts
// them in place, keeps the table short, and tells what the stream is doing.
// No inline scripts or styles: the CSP forbids them.
(function () {
  "use strict";

  var bar = document.getElementById("live-bar");
  var tbody = document.getElementById("live-rows");
  if (!bar || !tbody) return;

  var form = document.getElementById("live-filter");
  var stateEl = document.getElementById("live-state");
  var stateText = stateEl.querySelector(".live-state-text");
  var ratesEl = document.getElementById("live-rates");
  var sampledEl = document.getElementById("live-sampled");
  var delayEl = document.getElementById("live-delay");
  var heldEl = document.getElementById("live-held");
  var pauseButton = document.getElementById("live-pause");
  var interrupted = document.getElementById("live-interrupted");
  var interruptedText = document.getElementById("live-interrupted-text");
  var noun = bar.getAttribute("data-noun") || "events";
  var cap = parseInt(tbody.getAttribute("data-row-cap"), 10) || 200;

  var socket = null;
  var paused = false;
  var backoff = 1000;
  var retryTimer = null;
  var denied = false;
  var lastTapHeard = null;
  var lastFrameAt = 0;

  // Event-to-screen delays (ms) of the rows shown, newest last: the status line
  // shows their median, and a benchmark can read them.
  var live = (window.WarrenLive = { delays: [], parts: [], rowsShown: 0, frames: 0 });

  function formParams() {
    var params = new URLSearchParams();
    if (!form) return params;
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && value !== "") params.append(name, value);
    });
    return params;
  }

  function formFilters() {
    var filters = {};
    formParams().forEach(function (value, name) { filters[name] = value; });
    return filters;
  }

  function setState(state, text) {
    stateEl.setAttribute("data-state", state);
    stateText.textContent = text;
  }

  function showInterrupted(text) {
    interruptedText.textContent = text;
    interrupted.hidden = false;
    setState("down", "interrupted");
  }

  function connect() {
    retryTimer = null;
    if (denied) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + bar.getAttribute("data-ws") + "?" + formParams().toString();
    setState("connecting", "connecting…");
    try {
      socket = new WebSocket(url);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.onopen = function () {
      backoff = 1000;
      interrupted.hidden = true;
      setState("live", paused ? "paused" : "live");
      if (paused) send({ type: "pause" });
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      handle(message);
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4403 || denied) {
        denied = true;
        showInterrupted("Your access has ended: log in again to watch.");
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer || denied) return;
    var seconds = Math.round(backoff / 1000);
    showInterrupted("Reconnecting in " + seconds + " s…");
    retryTimer = window.setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function handle(message) {
    switch (message.type) {
      case "rows":
        lastFrameAt = Date.now();
        if (!paused) queueRows(message);
        if (message.status) showStatus(message.status);
        break;
      case "status":
        showStatus(message.status);
        break;
      case "subscribed":
        bar.setAttribute("data-filter", message.description || "");
        break;
      case "unavailable":
        showInterrupted("The live feed is unavailable (Redis?). Reconnecting by itself…");
        break;
      case "denied":
        denied = true;
        showInterrupted(message.error || "Your access has ended.");
        break;
      case "error":
        ratesEl.textContent = message.error;
        break;
    }
  }

  // Frames that arrive between two screen refreshes are put in place together,
  // in one DOM update per animation frame: the table is laid out once, not per frame.
  var pending = [];
  var drawScheduled = false;
  var tinted = [];

  window.setInterval(function () {
    var cutoff = Date.now() - 1500;
    while (tinted.length && tinted[0][0] < cutoff) {
      tinted.shift()[1].forEach(function (row) { row.classList.remove("fresh", "updated"); });
    }
  }, 1000);

  function queueRows(message) {
    message.receivedAt = Date.now();
    pending.push(message);
    if (!drawScheduled) {
      drawScheduled = true;
      window.requestAnimationFrame(draw);
    }
  }

  function draw() {
    drawScheduled = false;
    var messages = pending;
    pending = [];
    if (!messages.length) return;
    var fresh = document.createDocumentFragment();
    var newRows = 0;
    var updated = [];
    var placed = {};
    messages.forEach(function (message) {
      var template = document.createElement("template");
      template.innerHTML = message.html;
      var rows = Array.prototype.slice.call(template.content.children);
      for (var i = rows.length - 1; i >= 0; i--) {
        var row = rows[i];
        var existing = row.id ? (placed[row.id] || document.getElementById(row.id)) : null;
        if (existing) {
          existing.replaceWith(row);
          updated.push(row);
        } else {
          fresh.insertBefore(row, fresh.firstChild);
          newRows += 1;
        }
        if (row.id) placed[row.id] = row;
      }
      (message.gone || []).forEach(function (id) {
        var gone = placed[id] || document.getElementById(id);
        if (gone) gone.remove();
      });
      live.rowsShown += rows.length;
      live.frames += 1;
    });
    // New and changed rows are tinted for a moment so the eye finds them. The tint
    // is static and cleared in batches: an animation would repaint at 60 frames a second.
    Array.prototype.forEach.call(fresh.children, function (row) { row.classList.add("fresh"); });
    updated.forEach(function (row) { row.classList.add("updated"); });
    tinted.push([Date.now(), Array.prototype.slice.call(fresh.children).concat(updated)]);
    var empty = tbody.querySelector(".live-empty");
    if (empty && newRows) empty.remove();
    tbody.insertBefore(fresh, tbody.firstChild);
    var extra = tbody.children.length - cap;
    while (extra-- > 0) tbody.lastElementChild.remove();
    var shownAt = Date.now();
    messages.forEach(function (message) {
      (message.stamps || []).forEach(function (stamp) {
        if (!stamp) return;
        var delay = shownAt - stamp / 1000;
        if (delay > -1000 && delay < 600000) live.delays.push(delay);
      });
      // Where the time went: the tap (capture to commit), the publisher's coalescing,
      // the channel layer and consumer, the wire and the page.
      if (message.handed_us && message.pushed_us && message.stamps && message.stamps.length) {
        var newest = Math.max.apply(null, message.stamps);
        live.parts.push([
          (message.handed_us - newest) / 1000,
          (message.sent_us - message.handed_us) / 1000,
          (message.pushed_us - message.sent_us) / 1000,
          shownAt - message.pushed_us / 1000,
        ]);
      }
    });
    if (live.delays.length > 5000) live.delays.splice(0, live.delays.length - 5000);
    if (live.parts.length > 2000) live.parts.splice(0, live.parts.length - 2000);
  }

  function median(values) {
    if (!values.length) return null;
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    return sorted[Math.floor(sorted.length / 2)];
  }

  function figure(value) {
    if (value >= 100) return Math.round(value).toLocaleString("en");
    return value.toFixed(1).replace(/\.0$/, "");
  }

  function showStatus(status) {
    if (!status) return;
    live.status = status;
    var rates = status.rates || {};
    var text = figure(rates.seen || 0) + " " + noun + "/s captured";
    if (status.description && status.description !== "everything") {
      text += " · " + figure(rates.matched || 0) + "/s match " + status.description;
    }
    if (status.sampled) {
      text += " · showing about " + figure(rates.shown || 0) + "/s";
    }
    ratesEl.textContent = text;
    sampledEl.hidden = !status.sampled;
    if (status.paused) {
      heldEl.hidden = false;
      heldEl.textContent = (status.held || 0).toLocaleString("en") + " new held back";
    } else {
      heldEl.hidden = true;
    }
    if (status.tap_heard_us) lastTapHeard = status.tap_heard_us;
    var recent = live.delays.slice(-200);
    var middle = median(recent);
    var tap = status.tap || {};
    if (tap.index_paused) {
      // No event comes while indexing gives way to a busy machine: say why.
      delayEl.textContent =
        "indexing paused: the machine is busy · " + figure(tap.index_lag_s || 0) + " s behind";
    } else {
      delayEl.textContent = middle === null ? "" : "delay ≈ " + figure(middle) + " ms";
    }
  }

  // The tap sends a heartbeat every second: silence means the tap (or Redis
  // on its side) is away, even while this socket is fine.
  window.setInterval(function () {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (paused) return;
    if (lastTapHeard === null) {
      setState("quiet", "no word from the tap yet");
      return;
    }
    var silentS = (Date.now() * 1000 - lastTapHeard) / 1e6;
    if (silentS > 5) {
      setState("quiet", "no word from the tap for " + Math.round(silentS) + " s");
    } else {
      setState("live", "live");
    }
  }, 1000);

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    pauseButton.classList.toggle("primary", paused);
    setState(paused ? "paused" : "live", paused ? "paused" : "live");
    send({ type: paused ? "pause" : "resume" });
  });

  if (form) {
    // htmx reloads the newest stored rows; the socket switches its subscription.
    var subscribe = function () { send({ type: "subscribe", filters: formFilters() }); };
    form.addEventListener("change", subscribe);
    form.addEventListener("submit", subscribe);
  }

  // A click anywhere on a row opens it; links inside keep their own target.
  tbody.addEventListener("click", function (event) {
    if (event.target.closest("a, button, input, select")) return;
    if (window.getSelection && String(window.getSelection())) return;
    var row = event.target.closest("tr[data-href]");
    if (row) window.location.assign(row.getAttribute("data-href"));
  });

  connect();
})();
