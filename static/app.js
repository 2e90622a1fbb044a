// Global htmx behaviour: a refused or failed request is never silent, and says why.
//
// The server explains every refusal: problem+json carries it in `detail`, an error page in
// #error-detail. That reason is shown next to what the user clicked (and in the page's banner
// for screen readers); the status code only chooses a fallback when the reply has no reason.
function fallbackMessage(status) {
  if (status === 403) return "You are not allowed to do that with your role.";
  if (status === 404) return "That item no longer exists. Reload the page.";
  if (status === 409) return "Someone changed this meanwhile. Reload the page.";
  if (status >= 500) return "Something went wrong on the server (" + status + "). Try again in a moment.";
  return "The request was refused (" + status + "). Reload the page and try again.";
}

function serverReason(xhr) {
  var type = xhr.getResponseHeader("Content-Type") || "";
  var body = xhr.responseText || "";
  try {
    if (/json/.test(type)) {
      var problem = JSON.parse(body);
      return problem.detail || problem.title || "";
    }
    if (/html/.test(type)) {
      var page = new DOMParser().parseFromString(body, "text/html");
      var detail = page.getElementById("error-detail");
      return detail ? detail.textContent.trim() : "";
    }
  } catch (error) {
    return "";
  }
  return "";
}

document.addEventListener("htmx:responseError", function (event) {
  var xhr = event.detail.xhr;
  // A crash's own text (500) helps nobody at the keyboard; a 503 says what is unavailable.
  var reason = xhr.status === 500 ? "" : serverReason(xhr);
  showError(event.detail.elt, reason || fallbackMessage(xhr.status), event);
});
document.addEventListener("htmx:sendError", function (event) {
  showError(event.detail.elt, "The server could not be reached. Check your connection and try again.", event);
});

function clickedElement(elt, event) {
  // A form's request was made by the button that submitted it: the message goes beside that.
  var trigger = event && event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
  if (trigger && trigger.submitter && elt.contains(trigger.submitter)) return trigger.submitter;
  if (elt.tagName === "FORM") {
    var button = elt.querySelector("button[type=submit], button:not([type])");
    if (button) return button;
  }
  return elt;
}

function showError(elt, message, event) {
  var banner = document.getElementById("htmx-error");
  if (banner) { banner.textContent = message; banner.hidden = false; }
  if (!elt || !elt.isConnected) return;
  var anchor = clickedElement(elt, event);
  var note = anchor.nextElementSibling;
  if (!note || !note.classList.contains("htmx-inline-error")) {
    note = document.createElement("small");
    note.className = "field-error htmx-inline-error";
    note.setAttribute("role", "alert");
    anchor.insertAdjacentElement("afterend", note);
  }
  note.textContent = message;
}

document.addEventListener("htmx:beforeRequest", function () {
  var banner = document.getElementById("htmx-error");
  if (banner) banner.hidden = true;
  document.querySelectorAll(".htmx-inline-error").forEach(function (n) { n.remove(); });
});
