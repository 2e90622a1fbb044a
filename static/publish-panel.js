// The clip page's publish panel: live per-platform lengths of the caption with its hashtags, and
// focus on the result after Publish or Retry (the result region is aria-live; moving focus there
// lets a screen reader and a keyboard user carry on from the answer).
//
// The counting repeats the server's (dashboard/publishing/preview.py and rules.compose_caption)
// and the hashtag rule of dashboard/web/clip_forms.parse_hashtags; the server renders the same
// numbers without JavaScript, and the browser tests compare the two.
(function () {
  "use strict";

  function parseHashtags(raw) {
    var tags = [];
    (raw || "").split(",").forEach(function (entry) {
      var words = entry.split(/\s+/).filter(Boolean);
      var allTagged = words.length > 1 && words.every(function (w) { return w.charAt(0) === "#"; });
      var parts = allTagged ? words : [words.join(" ")];
      parts.forEach(function (part) {
        var tag = part.charAt(0) === "#" && part.split("#").length === 2 ? part.slice(1) : part;
        if (tag && tags.indexOf(tag) < 0) tags.push(tag);
      });
    });
    return tags;
  }

  function composeCaption(caption, tags) {
    var line = tags.map(function (tag) { return "#" + tag; }).join(" ");
    if (!line) return caption;
    return caption ? caption + "\n\n" + line : line;
  }

  function measure(text, unit) {
    if (unit === "UTF-16 units") return text.length;
    if (unit === "bytes") return new TextEncoder().encode(text).length;
    return Array.from(text).length; // code points, as Python's len()
  }

  function updateCounts() {
    var box = document.getElementById("caption-counts");
    if (!box) return;
    var caption = document.getElementById(box.dataset.caption);
    var hashtags = document.getElementById(box.dataset.hashtags);
    if (!caption || !hashtags) return;
    // Browsers send a textarea's line breaks as CRLF, which the server reads as one "\n".
    var text = composeCaption(caption.value.replace(/\r\n/g, "\n"), parseHashtags(hashtags.value));
    box.querySelectorAll(".caption-count").forEach(function (count) {
      var used = measure(text, count.dataset.unit);
      var limit = count.dataset.limit ? parseInt(count.dataset.limit, 10) : null;
      var over = limit !== null && used > limit;
      count.querySelector(".count-used").textContent = String(used);
      count.querySelector(".count-over").textContent = over ? " (over by " + (used - limit) + ")" : "";
      count.classList.toggle("over", over);
    });
  }

  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#publish-form")) updateCounts();
  });
  document.addEventListener("DOMContentLoaded", updateCounts);
  // A refused form comes back as a new #publish-form: count its values again.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (target && target.id === "publish-form") updateCounts();
    if (target && target.id === "publish-result" && target.isConnected) target.focus();
    // A followed attempt (a live publish, a retry) reached its end: its result takes the focus,
    // unless the person has moved on to another control meanwhile.
    var result = document.getElementById("publish-result");
    var final = document.getElementById("publish-final");
    if (final && result && !final.dataset.focused) {
      final.dataset.focused = "true";
      var active = document.activeElement;
      if (!active || active === document.body || result.contains(active)) result.focus();
    }
  });
})();
