// Video uploads from the clips pages: drag and drop or a file picker, a progress bar, and a
// resumable transfer (tus, with the vendored tus-js-client). An interrupted upload continues
// where the server stopped: automatically after a dropped connection, with Resume after Pause,
// and after a reload when the same file is picked again.
(function () {
  "use strict";

  function problemDetail(error) {
    var response = error && error.originalResponse;
    if (response) {
      try {
        var body = JSON.parse(response.getBody() || "{}");
        if (body.detail) return body.detail;
      } catch (ignored) { /* not JSON */ }
      return "The server refused the upload (" + response.getStatus() + ").";
    }
    return "The upload stopped: the server could not be reached. Press Resume to continue.";
  }

  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function setup(zone) {
    var input = zone.querySelector("[data-upload-input]");
    var progress = zone.querySelector("[data-upload-progress]");
    var status = zone.querySelector("[data-upload-status]");
    var pause = zone.querySelector("[data-upload-pause]");
    var resume = zone.querySelector("[data-upload-resume]");
    var current = null;

    function say(text, failed) {
      status.textContent = text;
      status.classList.toggle("failed", Boolean(failed));
    }

    function fieldValue(id) {
      var field = id ? document.getElementById(id) : null;
      return field ? field.value.trim() : "";
    }

    function start(file) {
      if (current) current.abort();
      var metadata = { filename: file.name, filetype: file.type || "" };
      if (zone.dataset.clipId) {
        metadata.clip_id = zone.dataset.clipId;
      } else {
        metadata.title = fieldValue(zone.dataset.titleInput) || file.name.replace(/\.[^.]+$/, "");
        metadata.description = fieldValue(zone.dataset.descriptionInput);
      }
      var upload = new tus.Upload(file, {
        endpoint: zone.dataset.endpoint,
        chunkSize: Number(zone.dataset.chunkSize) || Infinity,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        metadata: metadata,
        headers: { "X-CSRFToken": zone.dataset.csrf },
        removeFingerprintOnSuccess: true,
        onProgress: function (sent, total) {
          progress.hidden = false;
          progress.value = total ? Math.floor((sent / total) * 100) : 0;
          say("Uploading " + file.name + ": " + megabytes(sent) + " of " + megabytes(total));
        },
        onError: function (error) {
          say(problemDetail(error), true);
          pause.hidden = true;
          // A refused file (4xx) is final; anything else can go on from the server's offset.
          var response = error && error.originalResponse;
          resume.hidden = Boolean(response && response.getStatus() >= 400 && response.getStatus() < 500);
        },
        onSuccess: function (payload) {
          progress.value = 100;
          pause.hidden = resume.hidden = true;
          say("Uploaded. Checking the video…");
          var location = payload && payload.lastResponse && payload.lastResponse.getHeader("Clip-Location");
          window.location.assign(location || window.location.href);
        }
      });
      current = upload;
      say("Starting " + file.name + "…");
      pause.hidden = false;
      resume.hidden = true;
      upload.findPreviousUploads().then(function (previous) {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    }

    input.addEventListener("change", function () {
      if (input.files.length) start(input.files[0]);
    });
    pause.addEventListener("click", function () {
      if (!current) return;
      current.abort();
      pause.hidden = true;
      resume.hidden = false;
      say("Paused at " + progress.value + "%. Resume continues from there.");
    });
    resume.addEventListener("click", function () {
      if (!current) return;
      resume.hidden = true;
      pause.hidden = false;
      say("Resuming…");
      current.start();
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragover");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) start(files[0]);
    });
  }

  // "Use the player's frame": the cover field takes the player's current time.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-player][data-target]");
    if (!button) return;
    var player = document.getElementById(button.dataset.player);
    var field = document.getElementById(button.dataset.target);
    if (player && field) field.value = player.currentTime.toFixed(1);
  });

  function init() {
    document.querySelectorAll("[data-upload]").forEach(setup);
  }
  document.addEventListener("DOMContentLoaded", init);
  // The media panel is re-rendered by htmx (cover saved): wire its new upload zone.
  document.addEventListener("htmx:afterSettle", function (event) {
    event.detail.target.querySelectorAll("[data-upload]").forEach(setup);
  });
})();
