// The ledger page: Details rows open and close in place (no inline script: see the CSP).
// A second click on an open row's Details button closes it instead of fetching it again.
document.addEventListener("htmx:beforeRequest", function (event) {
  var button = event.detail.elt;
  if (!button.matches || !button.matches("button[data-expand]")) return;
  var detail = document.getElementById(button.getAttribute("aria-controls"));
  if (detail) {
    event.preventDefault();
    detail.remove();
    button.setAttribute("aria-expanded", "false");
    button.textContent = "Details";
  }
});
document.addEventListener("htmx:afterRequest", function (event) {
  var button = event.detail.elt;
  if (button.matches && button.matches("button[data-expand]") && event.detail.successful) {
    button.setAttribute("aria-expanded", "true");
    button.textContent = "Hide";
  }
});
