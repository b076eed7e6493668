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

  // The campaign form's disposition rows (a Django formset, campaigns/forms.py DispositionRows;
  // without this script it takes place numbers and Remove boxes): add a row from the <template>,
  // move rows up and down, remove one (ticked for removal and hidden, so the formset still sees
  // every index). Place numbers follow the rows; an empty key shows the digit the desk will give
  // it (campaigns.models.desk_keys: the first of 1-9, 0 no other row takes).
  var DESK_KEYS = "1234567890".split("");

  function wireDispositionRows(box) {
    var prefix = box.getAttribute("data-disp-rows");
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.getElementById(prefix + "-empty");
    var add = document.querySelector('[data-disp-add="' + prefix + '"]');
    function field(row, name) { return row.querySelector('[name$="-' + name + '"]'); }
    function live() {
      return Array.prototype.filter.call(box.querySelectorAll("[data-disp-row]"), function (row) { return !row.hidden; });
    }
    function renumber() {
      var rows = live();
      var named = rows.filter(function (row) { return field(row, "name").value.trim(); });
      var keys = named.map(function (row) { return field(row, "key").value.trim(); });
      var free = DESK_KEYS.filter(function (key) { return keys.indexOf(key) < 0; });
      rows.forEach(function (row, i) {
        field(row, "ORDER").value = String(i + 1);
        row.querySelector('[data-disp-move="up"]').disabled = i === 0;
        row.querySelector('[data-disp-move="down"]').disabled = i === rows.length - 1;
        var key = field(row, "key");
        key.placeholder = named.indexOf(row) >= 0 && !key.value.trim() ? free.shift() || "" : "";
      });
    }
    function setup(row) {
      row.querySelectorAll("[data-disp-move], [data-disp-remove]").forEach(function (b) { b.hidden = false; });
      var remove = field(row, "DELETE");
      remove.closest("label").hidden = true;
      if (remove.checked) row.hidden = true;
      var place = field(row, "ORDER");
      place.readOnly = true;
      place.tabIndex = -1;
    }
    function neighbour(row, step) {
      var rows = live();
      return rows[rows.indexOf(row) + step] || null;
    }
    box.classList.add("js");
    box.querySelectorAll("[data-disp-row]").forEach(setup);
    renumber();
    box.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      var row = button && button.closest("[data-disp-row]");
      if (!row) return;
      var move = button.getAttribute("data-disp-move");
      if (move) {
        var other = neighbour(row, move === "up" ? -1 : 1);
        if (other) { if (move === "up") other.before(row); else other.after(row); }
        renumber();
        button.focus();  // the keyboard stays on the row it moves
      } else if (button.hasAttribute("data-disp-remove")) {
        field(row, "DELETE").checked = true;
        row.hidden = true;
        renumber();
        if (add) add.focus();
      }
    });
    box.addEventListener("input", renumber);
    if (add) {
      add.hidden = false;
      add.addEventListener("click", function () {
        var index = Number(total.value);
        var holder = document.createElement("div");
        holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index)).trim();
        var row = holder.firstElementChild;
        box.appendChild(row);
        total.value = String(index + 1);
        setup(row);
        renumber();
        field(row, "name").focus();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-dropzone]").forEach(wireDropzone);
    document.querySelectorAll("[data-disp-rows]").forEach(wireDispositionRows);
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
