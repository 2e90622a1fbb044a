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

// The profile's zone picker: a search box that narrows the (long) list, and an offer of the zone
// this browser is in. Without JavaScript the plain select still works.
document.addEventListener("DOMContentLoaded", function () {
  var select = document.querySelector("select[data-zone-picker]");
  if (!select) return;
  var search = document.createElement("input");
  search.type = "search";
  search.id = select.id + "-search";
  search.placeholder = "Search: a city, a region or an offset such as +05:30";
  search.setAttribute("aria-controls", select.id);
  search.setAttribute("autocomplete", "off");
  var label = document.createElement("label");
  label.htmlFor = search.id;
  label.textContent = "Search time zones";
  var count = document.createElement("small");
  count.id = select.id + "-matches";
  count.className = "field-help";
  count.setAttribute("aria-live", "polite");
  search.setAttribute("aria-describedby", count.id);
  var fieldLabel = document.querySelector('label[for="' + select.id + '"]');
  (fieldLabel || select).insertAdjacentElement("beforebegin", label);
  label.insertAdjacentElement("afterend", search);
  search.insertAdjacentElement("afterend", count);

  search.addEventListener("input", function () {
    var words = search.value.toLowerCase().replace(/_/g, " ").split(/\s+/).filter(Boolean);
    var first = null, shown = 0;
    Array.prototype.forEach.call(select.options, function (option) {
      var text = option.text.toLowerCase().replace(/_/g, " ");
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      option.hidden = !match;
      if (match) { shown += 1; if (!first) first = option; }
    });
    if (first && select.selectedOptions[0] && select.selectedOptions[0].hidden) select.value = first.value;
    count.textContent = words.length ? shown + (shown === 1 ? " zone matches" : " zones match") : "";
  });

  var browserZone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  var aliases = {};
  try { aliases = JSON.parse(select.getAttribute("data-zone-aliases") || "{}"); } catch (error) { aliases = {}; }
  browserZone = aliases[browserZone] || browserZone;  // Chromium still says Asia/Calcutta
  var offered = browserZone && Array.prototype.find.call(select.options, function (o) { return o.value === browserZone; });
  if (offered && select.value !== browserZone) {
    var button = document.createElement("button");
    button.type = "button";
    button.id = select.id + "-browser";
    button.className = "secondary small";
    button.textContent = "Use this browser's zone: " + offered.text;
    button.addEventListener("click", function () {
      select.value = browserZone;
      button.hidden = true;
      select.focus();
    });
    var help = document.getElementById(select.id + "-help");
    var paragraph = document.createElement("p");
    paragraph.appendChild(button);
    (help || select).insertAdjacentElement("afterend", paragraph);
  }
});

// Copy buttons (a new API token): `data-copy` names the input to copy. The button stays hidden
// without JavaScript, where the text field can still be selected and copied by hand.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.id + "-status");
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      function done(ok) {
        if (status) status.textContent = ok ? "Copied." : "Select the token and copy it by hand.";
      }
      source.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(function () { done(true); },
          function () { done(document.execCommand("copy")); });
      } else {
        done(document.execCommand("copy"));
      }
    });
  });
});

// A panel marked data-clears-errors drops its old error messages when it sends a new request.
document.addEventListener("htmx:beforeRequest", function (event) {
  var panel = event.target.closest && event.target.closest("[data-clears-errors]");
  if (!panel) return;
  panel.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
  panel.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); });
  panel.querySelectorAll(".form-error").forEach(function (e) { e.hidden = true; });
});
