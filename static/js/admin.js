// Administration pages: the new-queue form shows only the arguments the chosen
// queue type takes, and the policy editor lists only the keys that fit what the
// policy applies to (without JavaScript every field and key shows, each naming
// what it is for; the server checks either way).
(function () {
  "use strict";
  function applyType(form) {
    var select = form.querySelector("[data-queue-type]");
    if (!select) return;
    var chosen = select.value;
    form.querySelectorAll("[data-for-types]").forEach(function (field) {
      var types = field.getAttribute("data-for-types").split(" ");
      var fits = types.indexOf(chosen) !== -1;
      field.hidden = !fits;
      field.querySelectorAll("input, select").forEach(function (input) {
        input.disabled = !fits;
      });
    });
  }
  function applyReach(select) {
    var option = select.options[select.selectedIndex];
    var reach = option ? option.getAttribute("data-reach").split(" ") : [];
    document.querySelectorAll("[data-targets]").forEach(function (key) {
      var fits = key.getAttribute("data-targets").split(" ").some(function (target) {
        return reach.indexOf(target) !== -1;
      });
      key.hidden = !fits;
      if (key.tagName === "OPTION") key.disabled = !fits;
    });
    document.querySelectorAll("[data-policy-keys-note]").forEach(function (note) {
      note.hidden = false;
    });
  }
  document.addEventListener("change", function (event) {
    if (!event.target.matches) return;
    if (event.target.matches("[data-queue-type]")) applyType(event.target.form);
    if (event.target.matches("[data-policy-apply-to]")) applyReach(event.target);
  });
  document.querySelectorAll("[data-queue-form]").forEach(applyType);
  document.querySelectorAll("[data-policy-apply-to]").forEach(applyReach);
})();
