// Broker console behaviours: selectors that apply at once, message body views.
// Loaded from the vhost selector on every page; no inline code (CSP).
(function () {
  "use strict";
  if (window.warrenConsole) return;
  window.warrenConsole = true;

  // A vhost or broker picked in the top bar applies without a button.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-autosubmit]") && select.form) {
      select.form.submit();
    }
  });

  // Text / JSON / Hex views of a peeked body. Delegated, so bodies that
  // htmx swaps in later work too.
  document.addEventListener("click", function (event) {
    var tab = event.target.closest ? event.target.closest("[data-view-tab]") : null;
    if (!tab || tab.disabled) return;
    var message = tab.closest("[data-message]");
    if (!message) return;
    var view = tab.getAttribute("data-view-tab");
    message.querySelectorAll("[data-view-tab]").forEach(function (other) {
      other.setAttribute("aria-selected", other === tab ? "true" : "false");
    });
    message.querySelectorAll("[data-view-panel]").forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-view-panel") !== view;
    });
  });

  // Do not refresh a list while the operator's pointer rests on it with a
  // confirmation open or text selected: the rows would move under them.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (!source || source.getAttribute("hx-trigger") !== "every 5s") return;
    var selection = window.getSelection ? String(window.getSelection()) : "";
    if (selection && source.contains(window.getSelection().anchorNode)) event.preventDefault();
    if (document.hidden) event.preventDefault();
  });
})();
