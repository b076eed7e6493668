// The sheet upload form (<form data-resumable="<start url>">): with this script the file goes up
// in pieces (campaigns/resumable.py) with a progress bar, and a dropped connection resumes where
// the server stopped; without it the form posts the file as before. A page reloaded mid-upload
// resumes too when the same file is chosen again (its upload id is kept in localStorage).
(function () {
  "use strict";

  var RETRY_MAX_SECONDS = 30;

  function wire(form) {
    var input = form.querySelector('input[type="file"]');
    var box = form.querySelector("[data-upload-progress]");
    if (!input || !box || !window.XMLHttpRequest || !window.Blob || !Blob.prototype.slice) return;
    var bar = box.querySelector("progress");
    var pct = box.querySelector("[data-upload-pct]");
    var state = box.querySelector("[data-upload-state]");
    var problem = form.querySelector("[data-upload-error]");
    var button = form.querySelector('button[type="submit"]');
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    var startUrl = form.getAttribute("data-resumable");

    function show(fraction, words) {
      var value = Math.min(100, Math.floor(fraction * 100));
      bar.setAttribute("value", String(value));
      pct.textContent = value + "%";
      if (words !== undefined) state.textContent = words;
    }

    function fail(message) {
      problem.textContent = message;
      problem.hidden = false;
      state.textContent = "";
      button.disabled = false;
    }

    // One request; calls back with (status, answer): status 0 is a network failure, 5xx a server
    // in trouble (both retried), anything else is final unless it carries an offset.
    function request(method, url, body, onProgress, done) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.setRequestHeader("Accept", "application/json");
      if (typeof body === "string") xhr.setRequestHeader("Content-Type", "application/json");
      else if (body) xhr.setRequestHeader("Content-Type", "application/octet-stream");
      if (onProgress) xhr.upload.addEventListener("progress", onProgress);
      xhr.onload = function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
        if (!answer && xhr.status < 500) {
          // A page instead of the upload's answer: signed out (the sign-in page), or refused.
          answer = { message: "The server answered with a page instead (signed out?): reload this page and upload again." };
          return done(400, answer);
        }
        done(xhr.status, answer);
      };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () { done(0, null); };
      xhr.send(body || null);
    }

    function upload(file) {
      var key = "agentdesk-upload:" + startUrl + ":" + file.name + ":" + file.size + ":" + file.lastModified;
      var id = null, chunk = 0, offset = 0, failures = 0;
      var pieceUrl = function () { return startUrl + id + "/"; };

      function retry(then) {
        failures += 1;
        var wait = Math.min(RETRY_MAX_SECONDS, Math.pow(2, failures - 1));
        state.textContent = "Connection lost: trying again in " + wait + " s…";
        setTimeout(function () {
          // Ask the server what it holds: the lost piece may have arrived, or half of it.
          request("GET", pieceUrl(), null, null, function (status, answer) {
            if (status === 200) { offset = answer.offset; failures = 0; then(); }
            else if (status === 0 || status >= 500) retry(then);
            else stop(answer);
          });
        }, wait * 1000);
      }

      function stop(answer) {
        localStorage.removeItem(key);
        fail(answer && answer.message ? answer.message : "The upload failed.");
      }

      function next() {
        if (offset >= file.size) return finish();
        var end = Math.min(file.size, offset + chunk);
        show(offset / file.size, "Uploading " + file.name + "…");
        request("PUT", pieceUrl() + "?offset=" + offset, file.slice(offset, end), function (event) {
          if (event.lengthComputable) show((offset + event.loaded) / file.size);
        }, function (status, answer) {
          if (status === 200) { offset = answer.offset; failures = 0; next(); }
          else if (status === 409 && answer && typeof answer.offset === "number") { offset = answer.offset; next(); }
          else if (status === 0 || status >= 500) retry(next);
          else stop(answer);
        });
      }

      function finish() {
        show(1, "Uploaded: reading the sheet…");
        request("POST", pieceUrl() + "finish/", "{}", null, function (status, answer) {
          if (status === 200 && answer.redirect) {
            localStorage.removeItem(key);
            window.location.assign(answer.redirect);
          } else if (status === 409 && answer && typeof answer.offset === "number") {
            offset = answer.offset; next();
          } else if (status === 0 || status >= 500) retry(finish);
          else stop(answer);
        });
      }

      function begin() {
        request("POST", startUrl, JSON.stringify({ name: file.name, size: file.size }), null, function (status, answer) {
          if (status !== 200) return fail(answer && answer.message ? answer.message : "The upload could not start.");
          id = answer.id; chunk = answer.chunk; offset = 0;
          try { localStorage.setItem(key, id); } catch (e) { /* private mode: no resume across reloads */ }
          next();
        });
      }

      box.hidden = false;
      problem.hidden = true;
      button.disabled = true;
      show(0, "Starting…");
      var earlier = null;
      try { earlier = localStorage.getItem(key); } catch (e) { earlier = null; }
      if (!earlier) return begin();
      id = earlier;
      request("GET", pieceUrl(), null, null, function (status, answer) {
        if (status !== 200) { localStorage.removeItem(key); return begin(); }
        if (answer.done) { localStorage.removeItem(key); return window.location.assign(answer.done); }
        chunk = answer.chunk; offset = answer.offset;
        state.textContent = "Resuming from " + Math.floor(100 * offset / file.size) + "%…";
        next();
      });
    }

    form.addEventListener("submit", function (event) {
      if (!input.files.length) return;  // the server says "Choose a sheet to upload."
      event.preventDefault();
      upload(input.files[0]);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-resumable]").forEach(wire);
  });
})();
