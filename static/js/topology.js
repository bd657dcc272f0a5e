// Topology page: fetches the graph of one vhost as JSON and draws it with cytoscape.
// Every name comes from the broker and is untrusted: text goes in with
// textContent, never innerHTML; cytoscape draws labels on a canvas.
(function () {
  "use strict";

  var COLORS = {
    exchange: "#f26b1d",
    queue: "#2563eb",
    missing: "#c0392b",
    binding: "#8a94a6",
    deadLetter: "#c0392b",
    alternate: "#7c3aed",
  };

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
    return [
      { selector: "node", style: {
        "label": "data(short)", "font-size": 12, "color": "#1d2330",
        "text-valign": "bottom", "text-margin-y": 5, "text-wrap": "ellipsis", "text-max-width": 170,
        "width": 26, "height": 26, "border-width": 2, "border-color": "#ffffff",
      } },
      { selector: "node[kind = 'exchange']", style: {
        "shape": "round-diamond", "background-color": COLORS.exchange, "width": 30, "height": 30,
      } },
      { selector: "node[kind = 'queue']", style: {
        "shape": "round-rectangle", "background-color": COLORS.queue, "width": 34, "height": 20,
      } },
      { selector: "node[?missing]", style: {
        "background-color": "#ffffff", "border-color": COLORS.missing, "border-style": "dashed",
        "border-width": 2, "color": COLORS.missing,
      } },
      { selector: "node[?focus]", style: {
        "border-color": "#1d2330", "border-width": 4, "font-weight": "bold", "font-size": 13,
      } },
      { selector: "node:selected", style: { "overlay-color": "#f26b1d", "overlay-opacity": 0.18 } },
      { selector: "edge", style: {
        "width": 1.6, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "line-color": COLORS.binding, "target-arrow-color": COLORS.binding,
        "label": "data(short)", "font-size": 10, "color": "#475467", "text-rotation": "autorotate",
        "text-background-color": "#ffffff", "text-background-opacity": 0.85,
        "text-background-padding": 1,
      } },
      { selector: "edge[kind = 'dead-letter']", style: {
        "line-color": COLORS.deadLetter, "target-arrow-color": COLORS.deadLetter,
        "line-style": "dashed", "width": 2, "color": COLORS.deadLetter,
      } },
      { selector: "edge[kind = 'alternate']", style: {
        "line-color": COLORS.alternate, "target-arrow-color": COLORS.alternate,
        "line-style": "dotted", "width": 2.4, "color": COLORS.alternate,
      } },
    ];
  }

  function layoutOptions(name, focus) {
    if (name === "cose") {
      return { name: "cose", animate: false, nodeRepulsion: 9000, idealEdgeLength: 110, padding: 30 };
    }
    if (name === "concentric") {
      return {
        name: "concentric", padding: 30, minNodeSpacing: 30, animate: false,
        concentric: function (node) { return node.id() === focus ? 10 : 10 - node.degree(); },
        levelWidth: function () { return 2; },
      };
    }
    // Left to right: roots are the nodes nothing points to (publishers' entry points).
    return {
      name: "breadthfirst", directed: true, padding: 30, spacingFactor: 1.25, animate: false,
      transform: function (node, position) { return { x: position.y * 1.5, y: position.x * 0.6 }; },
    };
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
    var layoutSelect = document.getElementById("graph-layout");
    var cy = window.cytoscape({
      container: container,
      elements: elements,
      style: style(),
      layout: layoutOptions(layoutSelect ? layoutSelect.value : "breadthfirst", data.focus),
      wheelSensitivity: 0.3,
      minZoom: 0.1,
      maxZoom: 1.8,
    });
    cy.on("tap", "node", function (event) { showSelection(event.target); });
    cy.on("dbltap", "node", function (event) {
      var url = event.target.data("url");
      if (url) window.location.assign(url);
    });
    if (data.focus) {
      var focus = cy.getElementById(data.focus);
      if (focus.nonempty()) { focus.select(); showSelection(focus); }
    }
    if (layoutSelect) {
      layoutSelect.addEventListener("change", function () {
        cy.layout(layoutOptions(layoutSelect.value, data.focus)).run();
        cy.fit(undefined, 30);
      });
    }
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
