/* The agent desk in the browser: keyboard, talk timer, connection banner, re-read on reconnect.
 *
 * Everything the desk shows comes from the server as HTML partials (commands are hx-post, pushes
 * arrive over /ws/desk/ with hx-swap-oob). This file only adds what a browser must do itself:
 * shortcuts, a ticking timer, and re-reading the whole desk after any WebSocket (re)connect,
 * because a push missed while disconnected is never replayed.
 */
(function () {
  "use strict";

  var root = null;
  var socketWrapper = null;
  var holdReconnect = false; // test hook: keep the socket down until resume()
  var retry = 0;
  var syncPending = false; // a re-read is on its way; <body data-synced> is set once it settled
  var RECONNECT_CODES = [1006, 1011, 1012, 1013]; // the ws extension reconnects these itself

  function $(sel) { return document.querySelector(sel); }

  function typing(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag === "input") {
      var type = (el.getAttribute("type") || "text").toLowerCase();
      return ["radio", "checkbox", "button", "submit", "hidden"].indexOf(type) < 0;
    }
    return !!el.isContentEditable;
  }

  // ---- connection ----------------------------------------------------------------------------

  function banner(show) {
    var el = $("#ws-banner");
    if (el) el.hidden = !show;
    document.body.classList.toggle("ws-down", !!show);
  }

  function rereadDesk() {
    // Keep what the agent typed for the same call across the re-read.
    var notes = $("#dispose-notes");
    var keep = {
      call: ($("#desk-dispose") || {}).dataset ? $("#desk-dispose").dataset.callId : "",
      notes: notes ? notes.value : "",
      disposition: (document.querySelector("input[name=disposition]:checked") || {}).value || "",
      callback: ($("#dispose-callback") || {}).value || "",
    };
    return htmx.ajax("GET", root.dataset.stateUrl, { target: "#desk-main", swap: "innerHTML" }).then(function () {
      var dispose = $("#desk-dispose");
      if (!dispose || !keep.call || dispose.dataset.callId !== keep.call) return;
      if (keep.notes && $("#dispose-notes")) $("#dispose-notes").value = keep.notes;
      if (keep.callback && $("#dispose-callback")) $("#dispose-callback").value = keep.callback;
      if (keep.disposition) {
        var radio = document.querySelector('input[name=disposition][value="' + keep.disposition + '"]');
        if (radio) radio.checked = true;
      }
      sync();
    });
  }

  function onOpen(evt) {
    socketWrapper = evt.detail.socketWrapper;
    retry = 0;
    banner(false);
    document.body.dataset.ws = "open";
    syncPending = true;
    rereadDesk();
  }

  function onClose(evt) {
    document.body.dataset.ws = "closed";
    banner(true);
    var code = evt.detail && evt.detail.event ? evt.detail.event.code : 0;
    if (code === 4403) return; // not an agent any more: the page's next request says so
    if (holdReconnect) return;
    if (RECONNECT_CODES.indexOf(code) < 0 && evt.detail.socketWrapper) {
      // A clean close (server restart, proxy, our own drop) is not retried by the extension.
      var delay = Math.min(10000, 500 * Math.pow(2, retry++)) * (0.5 + Math.random() / 2);
      setTimeout(function () { if (!holdReconnect) evt.detail.socketWrapper.reconnect(); }, delay);
    }
  }

  // Exposed for the browser tests and for support: drop the socket and bring it back.
  var sockets = [];
  window.deskConnection = {
    drop: function () {
      holdReconnect = true;
      sockets.forEach(function (ws) { try { ws.close(); } catch (e) { /* already closed */ } });
    },
    resume: function () {
      holdReconnect = false;
      if (socketWrapper) socketWrapper.reconnect();
    },
  };

  // ---- talk timer ----------------------------------------------------------------------------

  var skew = 0; // server clock minus browser clock, in seconds

  function tick() {
    document.querySelectorAll(".timer[data-connected-at]").forEach(function (el) {
      var since = parseInt(el.dataset.connectedAt, 10);
      if (!since) return;
      if (el.dataset.serverNow) {
        skew = parseInt(el.dataset.serverNow, 10) - Date.now() / 1000;
        delete el.dataset.serverNow;
      }
      var secs = Math.max(0, Math.floor(Date.now() / 1000 + skew - since));
      var m = Math.floor(secs / 60), s = secs % 60;
      el.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    });
  }

  // ---- panels --------------------------------------------------------------------------------

  function sync() {
    var call = $("#desk-call");
    var live = call && call.dataset.live === "1";
    var btn = $("#btn-dispose");
    if (btn) {
      btn.disabled = !!live;
      btn.title = live ? "End the call first" : "";
    }
    var picked = document.querySelector("input[name=disposition]:checked");
    var cb = $("#desk-dispose .callback-row");
    if (cb) cb.classList.toggle("active", !!(picked && picked.dataset.outcome === "callback"));
    tick();
  }

  function showSkip(show) {
    var form = $("#skip-form");
    if (!form) return false;
    form.hidden = !show;
    if (show) {
      var first = form.querySelector("input[name=reason]:checked") || form.querySelector("input[name=reason]");
      if (first) first.focus();
    } else if (document.activeElement && form.contains(document.activeElement)) {
      document.activeElement.blur();
    }
    return true;
  }

  function skipping() {
    var form = $("#skip-form");
    return !!(form && !form.hidden);
  }

  function clickIfEnabled(sel) {
    var el = $(sel);
    if (!el || el.disabled) return false;
    // A button swapped in moments ago gets its hx-post wired only when htmx settles (~20 ms
    // later); a fast key press in between would click a dead button. process() is idempotent.
    htmx.process(el);
    el.click();
    return true;
  }

  function submitDispose() {
    var btn = $("#btn-dispose");
    var form = $("#dispose-form");
    if (!form || !btn || btn.disabled || btn.closest("fieldset[disabled]")) return false;
    submitNow(form);
    return true;
  }

  function submitNow(form) {
    // A form a push swapped in moments ago is wired by htmx only when it settles; submitting
    // before that would do nothing (see clickIfEnabled). process() is idempotent.
    htmx.process(form);
    htmx.trigger(form, "submit");
  }

  function togglePresence() {
    var reason = $("#presence-reason");
    var campaign = $("#campaign-select");
    htmx.ajax("POST", root.dataset.presenceUrl || "/desk/presence/", {
      target: "#desk-main",
      swap: "innerHTML",
      values: { presence: "toggle", reason: reason ? reason.value : "", campaign: campaign ? campaign.value : "" },
    });
  }

  function cheatsheet() {
    var dialog = $("#cheatsheet");
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var key = e.key;
    if (typing(t)) {
      if (key === "Escape") { t.blur(); e.preventDefault(); return; }
      if (key === "Enter" && !e.shiftKey && (t.id === "dispose-notes" || t.id === "dispose-callback")) {
        e.preventDefault();
        submitDispose();
      }
      return;
    }
    if ($("#cheatsheet") && $("#cheatsheet").open && key !== "?") return; // the dialog owns Esc
    if (skipping()) {
      if (key === "Escape") { showSkip(false); e.preventDefault(); return; }
      if (key === "Enter") { e.preventDefault(); submitNow($("#skip-form")); return; }
      if (/^[1-9]$/.test(key)) {
        var reasons = document.querySelectorAll("#skip-form input[name=reason]");
        var r = reasons[parseInt(key, 10) - 1];
        if (r) { r.checked = true; r.focus(); }
        e.preventDefault();
      }
      return;
    }
    var handled = true;
    switch (key) {
      case "d": case "D": handled = clickIfEnabled("#btn-dial"); break;
      case "e": case "E": handled = clickIfEnabled("#btn-end"); break;
      case "s": case "S": handled = !$("#btn-skip") || $("#btn-skip").disabled ? false : showSkip(true); break;
      case "r": case "R": togglePresence(); break;
      case "n": case "N": if ($("#dispose-notes") && !$("#dispose-notes").disabled) $("#dispose-notes").focus(); else handled = false; break;
      case "c": case "C": if ($("#campaign-select")) $("#campaign-select").focus(); break;
      case "?": cheatsheet(); break;
      case "Enter": handled = submitDispose(); break;
      case "Escape": dismissAlert(); break;
      default:
        if (/^[1-9]$/.test(key)) {
          var radios = document.querySelectorAll("#desk-dispose input[name=disposition]");
          var radio = radios[parseInt(key, 10) - 1];
          if (radio && !radio.disabled) {
            radio.checked = true;
            sync();
            if (radio.dataset.outcome === "callback" && $("#dispose-callback")) $("#dispose-callback").focus();
          } else handled = false;
        } else handled = false;
    }
    if (handled) e.preventDefault();
  }

  function dismissAlert() {
    var alert = $("#desk-alert");
    if (alert) { alert.className = "desk-alert"; alert.innerHTML = ""; }
  }

  function onClick(e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    if (t.closest("[data-dismiss-alert]")) dismissAlert();
    else if (t.closest("#btn-skip")) showSkip(!skipping());
    else if (t.closest("[data-skip-cancel]")) showSkip(false);
    else if (t.closest("[data-cheatsheet]")) cheatsheet();
  }

  // A call only moves forward, but its panel arrives from several processes (the HTTP answer to
  // a command, pushes from the worker and the streams process) and one rendered earlier can land
  // later. Never swap in a panel that shows a call behind what was already shown; a call that
  // has left the desk (disposed, skipped) is closed for good.
  var shownRank = {};
  var CLOSED = 1000;

  function callOf(el) {
    if (!el || !el.dataset || !el.dataset.callId) return null;
    return { id: el.dataset.callId, rank: parseInt(el.dataset.callRank || "0", 10) };
  }

  function isStale(el) {
    var c = callOf(el);
    return !!c && shownRank[c.id] !== undefined && c.rank < shownRank[c.id];
  }

  function noteShown() {
    var current = callOf($("#desk-call"));
    Object.keys(shownRank).forEach(function (id) {
      if (!current || current.id !== id) shownRank[id] = CLOSED;
    });
    if (current) shownRank[current.id] = Math.max(shownRank[current.id] || 0, current.rank);
  }

  function guardPush(evt) {
    var incoming = evt.detail.fragment && evt.detail.fragment.firstElementChild;
    if (evt.detail.target && evt.detail.target.id === "desk-call" && isStale(incoming)) {
      evt.detail.shouldSwap = false;
    }
  }

  // A push re-renders the call panel now and then while a lead is previewed (the worker
  // finishing the previous call's disposition, a presence change): an agent halfway through
  // choosing a skip reason keeps the form open, with the reason they chose, when the panel that
  // lands is for the same lead. A panel for another lead closes it, as it should.
  var openSkip = null;

  function keepSkipBefore(evt) {
    openSkip = null;
    if (!evt.detail.target || evt.detail.target.id !== "desk-call" || evt.detail.shouldSwap === false) return;
    if (!skipping()) return;
    var form = $("#skip-form");
    var checked = form.querySelector("input[name=reason]:checked");
    openSkip = {
      lead: form.getAttribute("hx-post"),
      reason: checked ? checked.value : null,
      focused: form.contains(document.activeElement),
    };
  }

  function keepSkipAfter() {
    var kept = openSkip;
    openSkip = null;
    var form = $("#skip-form");
    if (!kept || !form || form.getAttribute("hx-post") !== kept.lead) return;
    form.hidden = false;
    var radio = Array.prototype.find.call(form.querySelectorAll("input[name=reason]"), function (r) {
      return r.value === kept.reason;
    });
    if (radio) radio.checked = true;
    if (kept.focused) (radio || form.querySelector("input[name=reason]")).focus();
  }

  function guardResponse(evt) {
    var html = evt.detail.serverResponse;
    if (typeof html !== "string" || html.indexOf('id="desk-call"') < 0) return;
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    var incoming = tpl.content.querySelector("#desk-call");
    var current = $("#desk-call");
    if (incoming && current && isStale(incoming)) {
      incoming.replaceWith(current.cloneNode(true));
      evt.detail.serverResponse = tpl.innerHTML;
    }
  }

  function init() {
    root = $("#desk-root");
    if (!root) return;
    root.dataset.presenceUrl = "/desk/presence/";
    var create = htmx.createWebSocket;
    htmx.createWebSocket = function (url) {
      var ws = create ? create(url) : new WebSocket(url);
      sockets = sockets.filter(function (s) { return s.readyState <= 1; });
      sockets.push(ws);
      return ws;
    };
    document.body.addEventListener("htmx:wsOpen", onOpen);
    document.body.addEventListener("htmx:wsClose", onClose);
    document.body.addEventListener("htmx:wsError", function () { banner(true); });
    document.body.addEventListener("htmx:afterSettle", sync);
    document.body.addEventListener("htmx:afterSettle", function (evt) {
      // Settled means htmx has wired the new content's triggers too: the desk is usable.
      if (syncPending && evt.detail.target && evt.detail.target.id === "desk-main") {
        syncPending = false;
        document.body.dataset.synced = String(Date.now());
      }
    });
    // A response whose retarget found nothing (its element was replaced by a push meanwhile):
    // the command did run on the server, so show the truth by re-reading the desk.
    document.body.addEventListener("htmx:targetError", function () { rereadDesk(); });
    document.body.addEventListener("htmx:oobAfterSwap", sync);
    document.body.addEventListener("htmx:oobBeforeSwap", guardPush);
    document.body.addEventListener("htmx:oobBeforeSwap", keepSkipBefore);
    document.body.addEventListener("htmx:oobAfterSwap", keepSkipAfter);
    document.body.addEventListener("htmx:beforeSwap", guardResponse);
    document.body.addEventListener("htmx:oobAfterSwap", noteShown);
    document.body.addEventListener("htmx:afterSettle", noteShown);
    document.body.addEventListener("change", function (e) {
      if (e.target && e.target.name === "disposition") sync();
    });
    document.addEventListener("keydown", onKey);
    document.addEventListener("click", onClick);
    noteShown();
    setInterval(tick, 1000);
    sync();
  }

  // Deferred like htmx and its ws extension, so this runs after both are defined and after the
  // document is parsed, but before DOMContentLoaded, when htmx processes the page and the
  // extension opens the socket: createWebSocket is wrapped and the listeners are in place first.
  init();
})();
