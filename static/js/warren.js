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

  document.addEventListener("htmx:confirm", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (!question) return;
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });
})();
