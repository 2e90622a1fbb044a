// Global htmx behaviour: a failed request is never silent.
document.addEventListener("htmx:responseError", function (event) {
  var xhr = event.detail.xhr;
  var message = "The request failed (" + xhr.status + " " + (xhr.statusText || "") + ").";
  if (xhr.status === 403) message = "You are not allowed to do that with your role.";
  if (xhr.status === 404) message = "That item no longer exists. Reload the page.";
  if (xhr.status === 400 && /CSRF/i.test(xhr.responseText)) message = "The form expired. Reload the page and try again.";
  if (xhr.status >= 500) message = "Something went wrong on the server (" + xhr.status + "). Try again in a moment.";
  showError(event.detail.elt, message);
});
document.addEventListener("htmx:sendError", function (event) {
  showError(event.detail.elt, "The server could not be reached. Check your connection and try again.");
});

function showError(elt, message) {
  // Next to where the user clicked, and in the page-level banner for screen readers.
  var banner = document.getElementById("htmx-error");
  if (banner) { banner.textContent = message; banner.hidden = false; }
  if (elt && elt.parentNode) {
    var note = elt.parentNode.querySelector(":scope > .htmx-inline-error");
    if (!note) {
      note = document.createElement("small");
      note.className = "field-error htmx-inline-error";
      note.setAttribute("role", "alert");
      elt.insertAdjacentElement("afterend", note);
    }
    note.textContent = message;
  }
}
document.addEventListener("htmx:beforeRequest", function () {
  var banner = document.getElementById("htmx-error");
  if (banner) banner.hidden = true;
  document.querySelectorAll(".htmx-inline-error").forEach(function (n) { n.remove(); });
});
