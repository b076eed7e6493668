// Supervisor pages: drag-and-drop onto upload forms, and re-reading live partials after every
// WebSocket (re)connect, because the channel layer may have dropped pushes (DESIGN.md).
(function () {
  "use strict";

  function wireDropzone(form) {
    var input = form.querySelector('input[type="file"]');
    if (!input) return;
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        event.preventDefault();
        form.classList.add("sv-drag");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function () { form.classList.remove("sv-drag"); });
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      form.requestSubmit();
    });
  }

  function refreshLive() {
    document.querySelectorAll("[data-refresh-url]").forEach(function (el) {
      if (window.htmx) {
        window.htmx.ajax("GET", el.getAttribute("data-refresh-url"), { target: "#" + el.id, swap: "outerHTML" });
      }
    });
  }

  // Every supervisor page shares one channel group, so a push may be for an element this page
  // does not show (another campaign's row, another upload): drop those instead of letting htmx
  // report an out-of-band swap with no target.
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var match = /\bid="([^"]+)"/.exec(event.detail.message || "");
    if (match && !document.getElementById(match[1])) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dropzone]").forEach(wireDropzone);
  });
  document.addEventListener("htmx:wsOpen", refreshLive);
})();
