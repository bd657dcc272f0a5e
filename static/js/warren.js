// Small behaviours shared by every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // Forms and buttons marked data-confirm ask before they act.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[hx-post],[hx-put],[hx-delete],[hx-patch]")) return; // htmx:confirm asks
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  // The top bar's menu button on narrow screens: opens and closes the navigation;
  // Escape closes it and gives the focus back to the button.
  function menuButton() { return document.querySelector("[data-menu-toggle]"); }
  function setMenu(open) {
    var button = menuButton();
    if (!button) return;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.closest(".topbar").classList.toggle("menu-open", open);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-menu-toggle]") : null;
    if (button) setMenu(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    var button = menuButton();
    if (event.key !== "Escape" || !button || button.getAttribute("aria-expanded") !== "true") return;
    setMenu(false);
    button.focus();
  });

  // Error pages: a "Previous page" button when there is one to go back to.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.history.length < 2) return;
    document.querySelectorAll("[data-history-back]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.history.back(); });
    });
  });

  // A box that scrolls sideways (a wide table on a phone) must be reachable with
  // the keyboard to be scrolled: when it holds nothing focusable it takes the focus.
  var SCROLLERS = ".table-scroll, .card.flush, table.grid, .sequence-scroll, .timeline-scroll, pre";
  function focusableScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      var style = window.getComputedStyle(box);
      var canScroll = /auto|scroll/.test(style.overflowX + style.overflowY);
      var hasFocusable = box.querySelector("a[href], button, input, select, textarea, [tabindex]");
      if (scrolls && canScroll && !hasFocusable) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-focus", "");
      } else if (box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", focusableScrollers);
  document.addEventListener("htmx:afterSettle", focusableScrollers);
  var resizing = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(focusableScrollers, 150);
  });

  document.addEventListener("htmx:confirm", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (!question) return;
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });
})();
