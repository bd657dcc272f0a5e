// Topology page: fetches the graph of one vhost as JSON and draws it with cytoscape.
// Every name comes from the broker and is untrusted: text goes in with
// textContent, never innerHTML; cytoscape draws labels on a canvas.
// Colours come from the CSS custom properties (warren.css) when the graph is drawn,
// and again when the theme changes.
(function () {
  "use strict";

  var UNBOUND = "group:unbound";
  var DEFAULT_EXCHANGE = "e:";
  var COLUMN = 250; // left to right: one column per step from the publishers' entry points
  var ROW = 58; // node, its label under it, and a gap: labels never reach the next node
  var READABLE_ZOOM = 0.75; // 13 px labels stay about 10 px on screen

  function color(name, fallback) {
    return window.warrenTheme ? window.warrenTheme.color(name, fallback) : fallback;
  }

  function palette() {
    return {
      exchange: color("--graph-exchange", "#f26b1d"),
      queue: color("--graph-queue", "#2563eb"),
      missing: color("--graph-missing", "#c0392b"),
      binding: color("--graph-edge", "#8a94a6"),
      alternate: color("--series-violet", "#7c3aed"),
      defaultRoute: color("--graph-default-route", "#0e9f8e"),
      label: color("--graph-label", "#1d2330"),
      labelBg: color("--graph-label-bg", "#ffffff"),
      muted: color("--muted", "#667085"),
      panel: color("--panel", "#ffffff"),
      panel3: color("--panel-3", "#eef0f3"),
      line: color("--line-strong", "#cfd4dc"),
      accent: color("--accent", "#f26b1d"),
      focus: color("--ink", "#1d2330"),
    };
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function link(href, text) {
    var a = el("a", text);
    a.href = href;
    return a;
  }

  function shorten(text, length) {
    text = String(text || "");
    return text.length > length ? text.slice(0, length - 1) + "…" : text;
  }

  function style() {
    var c = palette();
    return [
      { selector: "node", style: {
        "label": "data(short)", "font-size": 13, "color": c.label,
        // Under the node, never on it; a backdrop keeps it readable over an edge.
        "text-valign": "bottom", "text-halign": "center", "text-margin-y": 6,
        "text-wrap": "ellipsis", "text-max-width": 210,
        "text-background-color": c.labelBg, "text-background-opacity": 0.85,
        "text-background-padding": 2, "text-background-shape": "round-rectangle",
        "min-zoomed-font-size": 6,
        "width": 26, "height": 26, "border-width": 2, "border-color": c.panel,
      } },
      { selector: "node[kind = 'exchange']", style: {
        "shape": "round-diamond", "background-color": c.exchange, "width": 30, "height": 30,
      } },
      { selector: "node[kind = 'queue']", style: {
        "shape": "round-rectangle", "background-color": c.queue, "width": 34, "height": 20,
      } },
      { selector: "node[?missing]", style: {
        "background-color": c.panel, "border-color": c.missing, "border-style": "dashed",
        "border-width": 2, "color": c.missing,
      } },
      { selector: "node[?focus]", style: {
        "border-color": c.focus, "border-width": 4, "font-weight": "bold", "font-size": 14,
      } },
      // The header of the unbound queues: its words sit on it, it folds them.
      { selector: "node[kind = 'group']", style: {
        "shape": "round-rectangle", "background-color": c.panel3,
        "border-color": c.line, "border-width": 1, "border-style": "dashed",
        "label": "data(label)", "text-valign": "center", "text-halign": "center", "text-margin-y": 0,
        "text-background-opacity": 0, "font-size": 13, "color": c.label,
        "width": 230, "height": 34,
      } },
      { selector: "node:selected", style: { "overlay-color": c.accent, "overlay-opacity": 0.18 } },
      { selector: "node.match", style: {
        "border-color": c.accent, "border-width": 5, "font-weight": "bold", "z-index": 10,
      } },
      { selector: ".dimmed", style: { "opacity": 0.25 } },
      { selector: "edge", style: {
        "width": 1.6, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "line-color": c.binding, "target-arrow-color": c.binding,
        "label": "data(short)", "font-size": 11, "color": c.muted, "text-rotation": "autorotate",
        "text-background-color": c.labelBg, "text-background-opacity": 0.85,
        "text-background-padding": 1, "min-zoomed-font-size": 6,
      } },
      { selector: "edge[kind = 'dead-letter']", style: {
        "line-color": c.missing, "target-arrow-color": c.missing,
        "line-style": "dashed", "width": 2, "color": c.missing,
      } },
      { selector: "edge[kind = 'alternate']", style: {
        "line-color": c.alternate, "target-arrow-color": c.alternate,
        "line-style": "dotted", "width": 2.4, "color": c.alternate,
      } },
      { selector: "edge[kind = 'default']", style: {
        "line-color": c.defaultRoute, "target-arrow-color": c.defaultRoute,
        "width": 1.4, "color": c.defaultRoute, "curve-style": "unbundled-bezier",
      } },
    ];
  }

  // Left to right in columns: a node's column is its distance from the nodes nothing
  // points to; inside a column nodes keep breadthfirst's order, one ROW apart, so
  // a label (under its node, at most text-max-width wide) meets neither another
  // node nor another label.
  function layered(cy, eles) {
    eles.layout({ name: "breadthfirst", directed: true, animate: false, spacingFactor: 1 }).run();
    // breadthfirst puts each level at one height (give or take its overlap nudges)
    var byHeight = eles.nodes().sort(function (a, b) { return a.position("y") - b.position("y"); });
    var levels = [];
    var last = null;
    byHeight.forEach(function (node) {
      var y = node.position("y");
      if (last === null || y - last > 20) levels.push([]);
      levels[levels.length - 1].push(node);
      last = y;
    });
    var tallest = 0;
    levels.forEach(function (level) { tallest = Math.max(tallest, level.length); });
    levels.forEach(function (level, column) {
      var nodes = level.sort(function (a, b) { return a.position("x") - b.position("x"); });
      var top = (tallest - nodes.length) * ROW / 2;
      nodes.forEach(function (node, row) {
        node.position({ x: column * COLUMN, y: top + row * ROW });
      });
    });
  }

  function runLayout(cy, name, focus) {
    var connected = cy.nodes().filter(function (node) {
      return node.data("kind") !== "group" && !node.data("unbound");
    });
    if (name === "cose") {
      connected.layout({
        name: "cose", animate: false, nodeRepulsion: 12000, idealEdgeLength: 130, padding: 30,
        nodeDimensionsIncludeLabels: true,
      }).run();
    } else if (name === "concentric") {
      connected.layout({
        name: "concentric", padding: 30, minNodeSpacing: 50, animate: false,
        nodeDimensionsIncludeLabels: true,
        concentric: function (node) { return node.id() === focus ? 10 : 10 - node.degree(); },
        levelWidth: function () { return 2; },
      }).run();
    } else {
      layered(cy, connected.union(connected.connectedEdges()));
    }
    placeUnbound(cy, connected);
  }

  // Queues bound to nothing sit under a header of their own, in a grid under the rest.
  function placeUnbound(cy, connected) {
    var header = cy.getElementById(UNBOUND);
    var members = cy.nodes().filter(function (node) { return node.data("unbound"); });
    if (header.empty()) return;
    var box = connected.length ? connected.boundingBox({ includeLabels: true }) : { x1: 0, y2: 0 };
    var left = box.x1 + 115;
    header.position({ x: left, y: box.y2 + 60 });
    var perRow = Math.max(2, Math.ceil(Math.sqrt(members.length)));
    members.sort(function (a, b) { return a.data("name") < b.data("name") ? -1 : 1; })
      .forEach(function (node, index) {
        node.position({
          x: left + (index % perRow) * COLUMN,
          y: box.y2 + 60 + ROW + Math.floor(index / perRow) * ROW,
        });
      });
  }

  // Queues with no binding (the default exchange's aside) go into one group.
  function groupUnbound(elements) {
    var linked = {};
    elements.forEach(function (item) {
      if (item.group !== "edges") return;
      linked[item.data.source] = true;
      linked[item.data.target] = true;
    });
    var unbound = elements.filter(function (item) {
      return item.group === "nodes" && item.data.kind === "queue" && !linked[item.data.id] && !item.data.focus;
    });
    if (!unbound.length) return 0;
    unbound.forEach(function (item) { item.data.unbound = true; });
    elements.push({ group: "nodes", data: {
      id: UNBOUND, kind: "group", name: "", count: unbound.length,
      label: unbound.length + " unbound queue" + (unbound.length === 1 ? "" : "s"),
    } });
    return unbound.length;
  }

  function showNotes(data) {
    var box = document.getElementById("graph-notes");
    box.replaceChildren();
    (data.notes || []).forEach(function (note) {
      box.appendChild(el("p", note, "banner banner-info"));
    });
    var suggestions = document.getElementById("graph-suggestions");
    suggestions.replaceChildren();
    if (data.suggestions && data.suggestions.length) {
      suggestions.appendChild(el("h2", "Busiest queues"));
      var list = el("ul", null, "plain");
      data.suggestions.forEach(function (item) {
        var li = el("li");
        li.appendChild(link(item.focus_url, item.name));
        li.appendChild(el("small", " " + (item.messages === null || item.messages === undefined ? "–" : item.messages) + " messages"));
        list.appendChild(li);
      });
      suggestions.appendChild(list);
    }
  }

  function showSelection(node) {
    var box = document.getElementById("graph-selection");
    box.replaceChildren();
    box.classList.remove("muted");
    var data = node.data();
    if (data.kind === "group") {
      box.appendChild(el("p", data.label + ": nothing is bound to them; a publisher reaches them through the default exchange, by name."));
      return;
    }
    box.appendChild(el("p", data.kind + (data.type ? " · " + data.type : ""), "muted"));
    box.appendChild(el("p", data.label, "mono selection-name"));
    if (data.missing) box.appendChild(el("p", "Named as a dead-letter or alternate exchange, but it does not exist: messages sent there are dropped.", "banner banner-warning"));
    if (data.kind === "queue" && data.messages !== undefined && data.messages !== null) {
      box.appendChild(el("p", data.messages + " messages · " + (data.consumers || 0) + " consumers"));
    }
    var actions = el("p", null, "selection-links");
    if (data.url) actions.appendChild(link(data.url, "Open " + data.kind + " ›"));
    if (data.focus_url && !data.focus) {
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(link(data.focus_url, "Neighbourhood ›"));
    }
    box.appendChild(actions);
  }

  // Offer the names on screen in the focus field (the browser filters as one types).
  function offerNames(data) {
    var list = document.getElementById("graph-names");
    if (!list) return;
    list.replaceChildren();
    (data.elements || []).forEach(function (item) {
      if (item.group !== "nodes" || !item.data.name) return;
      var option = document.createElement("option");
      option.value = item.data.name;
      option.label = item.data.kind;
      list.appendChild(option);
    });
  }

  function setUnboundCollapsed(cy, collapsed) {
    var group = cy.getElementById(UNBOUND);
    var button = document.getElementById("graph-unbound");
    if (group.empty()) return;
    cy.nodes().filter(function (node) { return node.data("unbound"); })
      .style("display", collapsed ? "none" : "element");
    group.toggleClass("collapsed", collapsed);
    var words = group.data("count") + " unbound queue" + (group.data("count") === 1 ? "" : "s");
    group.data("label", (collapsed ? "\u25B8 " : "\u25BE ") + words + (collapsed ? " (show)" : ""));
    if (button) {
      button.setAttribute("aria-expanded", collapsed ? "false" : "true");
      button.textContent = (collapsed ? "Show " : "Hide ") + words;
    }
  }

  // The default exchange routes a message to the queue its routing key names:
  // every queue, so drawn only when asked for (RPC requests and replies go that way).
  function setDefaultRoutes(cy, shown) {
    // The routes lead to the unbound queues too (RPC servers' queues often are).
    if (shown) setUnboundCollapsed(cy, false);
    cy.batch(function () {
      cy.remove(cy.edges("[kind = 'default']"));
      cy.remove(cy.getElementById(DEFAULT_EXCHANGE));
      if (!shown) return;
      var queues = cy.nodes("[kind = 'queue']");
      if (!queues.length) return;
      var first = queues.boundingBox();
      cy.add({ group: "nodes", data: {
        id: DEFAULT_EXCHANGE, kind: "exchange", name: "", label: "(AMQP default)",
        short: "(AMQP default)", type: "direct",
      }, position: { x: first.x1 - COLUMN, y: (first.y1 + first.y2) / 2 } });
      queues.forEach(function (queue) {
        cy.add({ group: "edges", data: {
          id: "default|" + queue.id(), source: DEFAULT_EXCHANGE, target: queue.id(), kind: "default",
          label: queue.data("name"), short: "",
        } });
      });
    });
  }

  // Find: highlight every node whose name holds the text, dim the rest, centre
  // on the first (Enter moves on to the next).
  function find(cy, text, step) {
    var status = document.getElementById("graph-find-status");
    cy.elements().removeClass("match dimmed");
    text = text.trim().toLowerCase();
    if (!text) { status.textContent = ""; return; }
    var matches = cy.nodes().filter(function (node) {
      return node.data("kind") !== "group" && String(node.data("label") || "").toLowerCase().indexOf(text) !== -1;
    });
    if (!matches.length) { status.textContent = "No name on the graph holds this."; return; }
    matches.forEach(function (node) {
      if (node.data("unbound")) setUnboundCollapsed(cy, false);
    });
    cy.elements().not(matches).not(matches.connectedEdges()).addClass("dimmed");
    matches.addClass("match");
    find.index = step ? ((find.index || 0) + 1) % matches.length : 0;
    var target = matches[find.index];
    cy.animate({ center: { eles: target }, zoom: Math.max(cy.zoom(), 1) }, { duration: 250 });
    target.select();
    showSelection(target);
    status.textContent = matches.length + " found: " + (find.index + 1) + " of " + matches.length + " centred" + (matches.length > 1 ? " (Enter: next)" : "");
  }

  function readableFit(cy) {
    cy.fit(cy.elements(":visible"), 30);
    // A small graph is not blown up past a comfortable size.
    if (cy.zoom() > 1.2) cy.zoom({ level: 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
    // A big vhost fits only at a size nobody can read: start readable, at the top left.
    if (cy.zoom() < READABLE_ZOOM) {
      cy.zoom(READABLE_ZOOM);
      var box = cy.elements(":visible").boundingBox();
      cy.pan({ x: 30 - box.x1 * READABLE_ZOOM, y: 30 - box.y1 * READABLE_ZOOM });
    }
  }

  function draw(container, data) {
    var status = document.getElementById("graph-status");
    var elements = data.elements || [];
    elements.forEach(function (item) {
      item.data.short = shorten(item.data.label, item.group === "nodes" ? 40 : 32);
    });
    var counts = data.counts || {};
    status.textContent = elements.length
      ? counts.exchanges + " exchanges, " + counts.queues + " queues, " + counts.edges + " edges"
        + (data.mode === "neighbourhood" ? " around the chosen object" : "")
      : (data.mode === "too-big" ? "Nothing drawn yet." : "This vhost has no exchanges or queues of its own.");
    container.classList.toggle("is-empty", !elements.length);
    if (!elements.length) return null;
    var unbound = groupUnbound(elements);
    var layoutSelect = document.getElementById("graph-layout");
    var cy = window.cytoscape({
      container: container,
      elements: elements,
      style: style(),
      layout: { name: "preset" },
      wheelSensitivity: 0.3,
      minZoom: 0.1,
      maxZoom: 2.5,
    });
    runLayout(cy, layoutSelect ? layoutSelect.value : "breadthfirst", data.focus);
    cy.on("tap", "node", function (event) {
      var node = event.target;
      if (node.id() === UNBOUND) setUnboundCollapsed(cy, !node.hasClass("collapsed"));
      showSelection(node);
    });
    cy.on("dbltap", "node", function (event) {
      var url = event.target.data("url");
      if (url) window.location.assign(url);
    });
    if (data.focus) {
      var focus = cy.getElementById(data.focus);
      if (focus.nonempty()) { focus.select(); showSelection(focus); }
    }
    var unboundButton = document.getElementById("graph-unbound");
    if (unboundButton && unbound) {
      unboundButton.hidden = false;
      // Many unbound queues would push the graph out of view: they start folded.
      setUnboundCollapsed(cy, unbound > 8);
      unboundButton.addEventListener("click", function () {
        setUnboundCollapsed(cy, unboundButton.getAttribute("aria-expanded") === "true");
      });
    }
    var defaults = document.getElementById("graph-default-routes");
    if (defaults) {
      defaults.addEventListener("change", function () {
        setDefaultRoutes(cy, defaults.checked);
        readableFit(cy);
      });
      if (defaults.checked) setDefaultRoutes(cy, true);
    }
    var finder = document.getElementById("graph-find");
    if (finder) {
      finder.addEventListener("input", function () { find(cy, finder.value, false); });
      finder.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); find(cy, finder.value, true); }
      });
    }
    if (layoutSelect) {
      layoutSelect.addEventListener("change", function () {
        runLayout(cy, layoutSelect.value, data.focus);
        readableFit(cy);
      });
    }
    document.addEventListener("warren:theme", function () { cy.style(style()); });
    readableFit(cy);
    window.warrenGraph = cy; // for the browser tests and the curious
    return cy;
  }

  function start() {
    var container = document.getElementById("graph");
    if (!container) return;
    var status = document.getElementById("graph-status");
    fetch(container.getAttribute("data-src"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          throw new Error("The session has ended: reload the page to log in again.");
        }
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || ("The server answered " + response.status + "."));
          return body;
        });
      })
      .then(function (data) {
        showNotes(data);
        offerNames(data);
        draw(container, data);
        container.setAttribute("data-ready", "true");
      })
      .catch(function (error) {
        status.textContent = "";
        status.appendChild(el("span", error.message, "banner banner-error"));
        container.setAttribute("data-ready", "error");
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
