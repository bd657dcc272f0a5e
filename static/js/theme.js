// The colour theme: the choice stored in this browser, else the system's
// prefers-color-scheme. Loaded in <head> without defer so data-theme is set on
// <html> before the first paint (no flash of the wrong theme). Scripts that draw
// with colours (charts, the topology graph) read the CSS custom properties through
// window.warrenTheme.color() and redraw on the "warren:theme" event.
(function () {
  "use strict";
  var KEY = "warren-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (error) {
      return null; // storage refused (private mode, policy): follow the system
    }
  }

  function preferred() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function current() {
    return root.getAttribute("data-theme") === "dark" ? "dark" : "light";
  }

  function showOnButtons() {
    var dark = current() === "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", dark ? "true" : "false");
    });
  }

  function apply(theme, announce) {
    if (root.getAttribute("data-theme") === theme) return;
    root.setAttribute("data-theme", theme);
    showOnButtons();
    if (announce) document.dispatchEvent(new CustomEvent("warren:theme", { detail: { theme: theme } }));
  }

  apply(preferred(), false);

  if (media) {
    var follow = function () { if (!stored()) apply(preferred(), true); };
    if (media.addEventListener) media.addEventListener("change", follow);
    else if (media.addListener) media.addListener(follow);
  }
  // Another tab changed the choice.
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) apply(preferred(), true);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-theme-toggle]") : null;
    if (!button) return;
    var next = current() === "dark" ? "light" : "dark";
    try { window.localStorage.setItem(KEY, next); } catch (error) { /* kept for this page only */ }
    apply(next, true);
  });

  document.addEventListener("DOMContentLoaded", showOnButtons);

  window.warrenTheme = {
    current: current,
    // A custom property's value now, e.g. color("--series-blue") -> "#2563eb".
    color: function (name, fallback) {
      var value = window.getComputedStyle(root).getPropertyValue(name).trim();
      return value || fallback || "";
    },
  };
})();
