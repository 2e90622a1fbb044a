// The page that shows a new API token once (no inline script: see the CSP).
(function () {
  var field = document.getElementById("new-token-value");
  if (!field) return;
  // Focusing the token selects it, ready to copy.
  field.addEventListener("focus", function () { field.select(); });
  // The address bar becomes the plain list, so reloading shows the list instead of resending
  // the form (which would make a second token).
  history.replaceState(null, "", field.dataset.listUrl);
})();
