// The new-replay form: show a section only when the choice it belongs to is made.
// Without JavaScript every section stays visible and the server still checks everything.
(function () {
  "use strict";

  function chosen(form, name) {
    var field = form.querySelector('[name="' + name + '"]:checked');
    if (field) return field.type === "checkbox" ? "on" : field.value;
    return "";
  }

  function update(form) {
    form.querySelectorAll("[data-shown-when]").forEach(function (section) {
      var rule = section.getAttribute("data-shown-when").split("=");
      section.hidden = chosen(form, rule[0]) !== rule[1];
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.replay-form").forEach(function (form) {
      update(form);
      form.addEventListener("change", function () { update(form); });
    });
  });
})();
