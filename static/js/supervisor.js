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

  // Times in state (<time class="ticker" data-elapsed="...">, agentdesk/templatetags/floor.py):
  // the server says how many seconds had passed when it rendered; the page counts on from the
  // moment it first saw the element, so a browser clock that is off does not matter.
  function formatDuration(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.ticker[data-elapsed]").forEach(function (el) {
      if (!el.dataset.seenAt) el.dataset.seenAt = String(now);
      var seconds = Number(el.dataset.elapsed) + Math.floor((now - Number(el.dataset.seenAt)) / 1000);
      var text = formatDuration(Math.max(0, seconds));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dropzone]").forEach(wireDropzone);
    document.querySelectorAll("[data-fullscreen]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (document.fullscreenElement) document.exitFullscreen();
        else document.documentElement.requestFullscreen();
      });
    });
    setInterval(tick, 1000);  // tickers may arrive later, in pushed fragments
  });
  document.addEventListener("htmx:wsOpen", refreshLive);
})();
