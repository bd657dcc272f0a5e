// Message page: JSON / Text / Hex tabs over the body (JSON first when the body is JSON).
// Without JavaScript every panel shows.
document.addEventListener("DOMContentLoaded", () => {
  for (const tabs of document.querySelectorAll("[data-tabs]")) {
    const buttons = [...tabs.querySelectorAll("button[data-tab]")];
    const panels = [...tabs.parentElement.querySelectorAll("[data-panel]")];
    const choose = (name) => {
      for (const button of buttons) button.setAttribute("aria-selected", String(button.dataset.tab === name));
      for (const panel of panels) panel.hidden = panel.dataset.panel !== name;
    };
    for (const button of buttons) button.addEventListener("click", () => choose(button.dataset.tab));
    const first = buttons.find((button) => !button.disabled) || buttons[buttons.length - 1];
    choose(first.dataset.tab);
  }
  // The JSON tree: open or close every level at once.
  for (const button of document.querySelectorAll("[data-json-expand]")) {
    button.addEventListener("click", () => {
      const open = button.dataset.jsonExpand === "open";
      const view = button.closest(".json-view");
      for (const details of view.querySelectorAll("details")) details.open = open;
      if (!open) view.querySelector("details").open = true; // the top level stays open
    });
  }
});
