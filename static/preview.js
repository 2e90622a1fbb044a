// The post preview beside the publish panel follows the caption, hashtags and account as they
// are typed. Plain fetch, not htmx: a background refresh must not clear or raise the page's
// error messages, and a failed refresh only leaves the last preview in place.
(function () {
  "use strict";
  var FIELDS = ["platform", "social_account_id", "caption", "hashtags"];

  function setup() {
    var section = document.getElementById("post-preview");
    var panel = document.getElementById("publish-panel");
    if (!section || !panel) return;
    var timer = null;
    var latest = 0;

    function refresh() {
      var form = document.getElementById("publish-form");
      if (!form) return;
      var params = new URLSearchParams();
      FIELDS.forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field && field.value) params.set(name, field.value);
      });
      var ticket = ++latest;
      fetch(section.dataset.previewUrl + "?" + params.toString(), {
        headers: { "HX-Request": "true" }, credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html !== null && ticket === latest) section.innerHTML = html;
      }).catch(function () { /* keep the last preview */ });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }
    panel.addEventListener("input", later);
    panel.addEventListener("change", later);
  }
  document.addEventListener("DOMContentLoaded", setup);
})();
