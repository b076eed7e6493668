/* The agent desk in the browser: keys, the talk timer, reconnecting.
 *
 * Everything the desk shows comes from the server as HTML partials: commands are hx-posts, and
 * the desk's socket (/ws/desk/) delivers every panel with hx-swap-oob, starting with the whole
 * desk after each (re)connect. What the agent types survives swaps by hx-preserve (desk.html).
 * This file only adds what a browser must do itself.
 */
(function () {
  "use strict";

  var root = null;
  var retry = 0;
  var syncPending = false; // the socket opened; <body data-synced> is set by its first frame
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
  // The socket draws the desk: its first frame after every (re)connect is the whole desk, and the
  // server renders each later frame when it sends it (docs/desk.md "One ordering rule").

  function banner(show) {
    var el = $("#ws-banner");
    if (el) el.hidden = !show;
    document.body.classList.toggle("ws-down", !!show);
  }

  // Reconnect soon: half a second doubling to ten at most, jittered (the extension's own default
  // grows to a minute, long for an agent mid-call).
  function reconnectDelay(retries) {
    return Math.min(10000, 500 * Math.pow(2, retries)) * (0.5 + Math.random() / 2);
  }

  function onOpen() {
    retry = 0;
    banner(false);
    document.body.dataset.ws = "open";
    syncPending = true;
  }

  function onMessage() {
    // The first frame after an open is the whole desk: from here on the desk is current.
    if (syncPending) {
      syncPending = false;
      document.body.dataset.synced = String(Date.now());
    }
  }

  function onClose(evt) {
    document.body.dataset.ws = "closed";
    delete document.body.dataset.synced;
    banner(true);
    var code = evt.detail && evt.detail.event ? evt.detail.event.code : 0;
    if (code === 4403) return; // not an agent any more: the page's next request says so
    if (RECONNECT_CODES.indexOf(code) < 0 && evt.detail.socketWrapper) {
      // A clean close (server restart, proxy) is not retried by the extension itself.
      setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, reconnectDelay(retry++));
    }
  }

  // ---- timers -------------------------------------------------------------------------------
  // Every clock ticks here from a server timestamp (no polling): the talk timer, the time in the
  // current state and today's total for it, wrap-up against the campaign's limit. Callbacks turn
  // "due" and a recent call's Edit goes away when their time comes.

  var skew = 0; // server clock minus browser clock, in seconds

  function clockText(secs) {
    var h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
    var ss = (s < 10 ? "0" : "") + s;
    return h ? h + ":" + (m < 10 ? "0" : "") + m + ":" + ss : m + ":" + ss;
  }

  function serverNow() { return Date.now() / 1000 + skew; }

  function tick() {
    document.querySelectorAll("[data-server-now]").forEach(function (el) {
      skew = parseInt(el.dataset.serverNow, 10) - Date.now() / 1000;
      delete el.dataset.serverNow;
    });
    var now = serverNow();
    document.querySelectorAll(".timer[data-connected-at]").forEach(function (el) {
      var since = parseInt(el.dataset.connectedAt, 10);
      if (!since) return;
      var secs = Math.max(0, Math.floor(now - since));
      el.textContent = clockText(secs);
    });
    document.querySelectorAll(".clock[data-since]").forEach(function (el) {
      var since = parseInt(el.dataset.since, 10);
      if (!since) return;
      var secs = Math.max(0, Math.floor(now - since)) + (parseInt(el.dataset.base, 10) || 0);
      el.textContent = clockText(secs);
      var limit = parseInt(el.dataset.limit, 10);
      if (limit) {
        var line = el.closest(".wrapup");
        if (line) line.classList.toggle("over", secs > limit);
      }
    });
    document.querySelectorAll(".lead-time[data-lead-zone]").forEach(function (el) {
      leadClock(el, now);
    });
    document.querySelectorAll(".cb[data-due-at]").forEach(function (row) {
      row.classList.toggle("due", now >= parseInt(row.dataset.dueAt, 10));
    });
    document.querySelectorAll("[data-edit-until]").forEach(function (btn) {
      if (now >= parseInt(btn.dataset.editUntil, 10)) {
        btn.hidden = true;
        var row = $("#notes-row-" + btn.dataset.editNotes);
        if (row) row.hidden = true;
      }
    });
  }

  // ---- the agent's own time ---------------------------------------------------------------------
  // The server renders times "yours" in its own zone (TIME_ZONE); the agent may sit in another.
  // Each [data-agent-time] (a Unix time) is shown again in the browser's zone, as "Tue 00:30"
  // like the server's, 24-hour. Done after every swap, so pushed panels read the same.

  function dayAndTime(zone) {
    var options = { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (zone) options.timeZone = zone;
    return new Intl.DateTimeFormat("en-US", options);
  }

  // A Unix time's weekday, hour and minute ("Tue", "00", "30") in the format's zone.
  function timeParts(format, unix) {
    var parts = {};
    format.formatToParts(new Date(unix * 1000)).forEach(function (p) { parts[p.type] = p.value; });
    return parts;
  }

  var AGENT_TIME = dayAndTime(null);

  function agentTimes() {
    var zone = AGENT_TIME.resolvedOptions().timeZone;
    document.querySelectorAll("[data-agent-time]").forEach(function (el) {
      var parts = timeParts(AGENT_TIME, parseInt(el.dataset.agentTime, 10));
      el.textContent = parts.weekday + " " + parts.hour + ":" + parts.minute;
      el.title = "Your time (" + zone + ")";
      delete el.dataset.agentTime;
    });
  }

  // ---- the lead's local time -------------------------------------------------------------------
  // The card's time and weekday (rendered by the server in the lead's zone) tick here each minute
  // in that zone, from the server's clock: a lead stays on the desk for as long as the agent reads.

  var LEAD_TIMES = {}; // a format per zone

  function leadClock(el, now) {
    var zone = el.dataset.leadZone;
    try {
      LEAD_TIMES[zone] = LEAD_TIMES[zone] || dayAndTime(zone);
    } catch (e) {
      return; // a zone this browser does not know: the server's text stays
    }
    var parts = timeParts(LEAD_TIMES[zone], Math.floor(now));
    var time = el.querySelector("#lead-local-time"), day = el.querySelector("#lead-local-day");
    var hm = parts.hour + ":" + parts.minute, wd = parts.weekday + " \u00B7 " + zone;
    if (time && time.textContent !== hm) time.textContent = hm;
    if (day && day.textContent !== wd) day.textContent = wd;
  }

  // ---- a lead arriving while the tab is in the background --------------------------------------
  // The title changes, a short sound plays (the agent can turn it off: M, kept in localStorage)
  // and, when the agent allowed it (A), a desktop notification. Back in the tab, the title returns.

  var SOUND_KEY = "agentdesk.desk.sound";
  var NEW_LEAD_TITLE = "\u25CF New lead \u00B7 AgentDesk";
  var pageTitle = document.title;
  var lastLead = null;

  function soundOn() {
    try { return window.localStorage.getItem(SOUND_KEY) !== "off"; } catch (e) { return true; }
  }

  function showSound() {
    var on = soundOn();
    var btn = $("#btn-sound");
    if (btn) {
      btn.firstChild.textContent = on ? "Sound on " : "Sound off ";
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    }
    var state = $("#sound-state");
    if (state) state.textContent = on ? "on" : "off";
  }

  function toggleSound() {
    try { window.localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on"); } catch (e) { /* private mode */ }
    showSound();
    return true;
  }

  function askNotifications() {
    if (!("Notification" in window)) return false;
    if (Notification.permission === "default") Notification.requestPermission().then(showNotify);
    showNotify();
    return true;
  }

  function showNotify() {
    var btn = $("#btn-notify");
    if (!btn || !("Notification" in window)) { if (btn) btn.hidden = true; return; }
    btn.firstChild.textContent = Notification.permission === "granted" ? "Notifications on "
      : Notification.permission === "denied" ? "Notifications blocked " : "Notifications ";
  }

  function leadArrived() {
    var preview = $("#desk-preview");
    var lead = preview ? preview.dataset.leadId || "" : "";
    var fresh = lead && lastLead !== null && lead !== lastLead;
    lastLead = lead;
    if (!fresh || !document.hidden) return;
    document.title = NEW_LEAD_TITLE;
    var btn = $("#btn-sound");
    if (soundOn() && btn && btn.dataset.sound) {
      var audio = new Audio(btn.dataset.sound);
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* no sound before a first click */ });
    }
    if ("Notification" in window && Notification.permission === "granted") {
      var name = $("#lead-name"), number = $("#lead-number");
      new Notification("New lead", {
        body: [name ? name.textContent : "", number ? number.textContent : ""].join(" ").trim(),
        tag: "agentdesk-new-lead",
      });
    }
  }

  function onVisible() {
    if (!document.hidden && document.title === NEW_LEAD_TITLE) document.title = pageTitle;
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
    agentTimes();
    leadArrived();
    keepTakeFocus();
  }

  // ---- recent calls: correcting notes -----------------------------------------------------------

  function editNotes(id) {
    var row = $("#notes-row-" + id);
    if (!row) return false;
    row.hidden = false;
    var input = row.querySelector("textarea");
    if (input) { input.focus(); input.setSelectionRange(input.value.length, input.value.length); }
    return true;
  }

  function closeNotes(el) {
    var row = el.closest(".notes-row");
    if (row) row.hidden = true;
    if (document.activeElement && row && row.contains(document.activeElement)) document.activeElement.blur();
  }

  function editLastNotes() {
    var btn = document.querySelector("#desk-recent [data-edit-notes]:not([hidden])");
    return btn ? editNotes(btn.dataset.editNotes) : false;
  }

  function focusCallbacks() {
    var btn = document.querySelector("#desk-callbacks .cb-take:not(:disabled)");
    if (!btn) return false;
    htmx.process(btn);
    btn.focus();
    return true;
  }

  // The callback whose Preview button has the keyboard (B): a push that redraws the list puts
  // the focus back on it, so B then Enter works whatever arrives in between.
  var takeFocus = null;

  function onFocusIn(e) {
    var row = e.target.classList && e.target.classList.contains("cb-take") && e.target.closest("tr[data-lead-id]");
    takeFocus = row ? row.dataset.leadId : null;
  }

  function onFocusOut(e) {
    // Moved away by the agent (the button is still there): forget it. Removed by a swap: keep it.
    var left = e.target;
    if (!left.classList || !left.classList.contains("cb-take")) return;
    setTimeout(function () { if (left.isConnected && document.activeElement !== left) takeFocus = null; }, 0);
  }

  function keepTakeFocus() {
    var active = document.activeElement;
    if (!takeFocus || (active && active !== document.body)) return;
    var btn = document.querySelector('#callbacks-list tr[data-lead-id="' + takeFocus + '"] .cb-take:not(:disabled)');
    if (btn) { htmx.process(btn); btn.focus(); } else takeFocus = null;
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
    htmx.process(el.form || el);
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
    // A form button (hidden): the presence form posts it with the reason and the campaign.
    return clickIfEnabled("#btn-presence-toggle");
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
      if (t.classList && t.classList.contains("notes-input")) {
        if (key === "Escape") { closeNotes(t); e.preventDefault(); return; }
        if (key === "Enter" && !e.shiftKey) { e.preventDefault(); submitNow(t.form); return; }
        return;
      }
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
        if (r) {
          r.checked = true;
          // "Other" takes a few words: straight into its field (Enter skips from there too).
          if (r.value === "Other" && $("#skip-other")) $("#skip-other").focus(); else r.focus();
        }
        e.preventDefault();
      }
      return;
    }
    var handled = true;
    switch (key) {
      case "d": case "D": handled = clickIfEnabled("#btn-dial"); break;
      case "e": case "E": handled = clickIfEnabled("#btn-end"); break;
      case "s": case "S": handled = !$("#btn-skip") || $("#btn-skip").disabled ? false : showSkip(true); break;
      case "r": case "R": handled = togglePresence(); break;
      case "n": case "N": if ($("#dispose-notes") && !$("#dispose-notes").disabled) $("#dispose-notes").focus(); else handled = false; break;
      case "c": case "C": if ($("#campaign-select")) $("#campaign-select").focus(); break;
      case "b": case "B": handled = focusCallbacks(); break;
      case "h": case "H": handled = editLastNotes(); break;
      case "m": case "M": handled = toggleSound(); break;
      case "a": case "A": handled = askNotifications(); break;
      case "?": cheatsheet(); break;
      case "Enter": handled = submitDispose(); break;
      case "Escape": dismissAlert(); break;
      default:
        if (/^[0-9]$/.test(key)) {
          // The key shown beside each disposition (the campaign form sets it, or its place does).
          var radio = document.querySelector('#desk-dispose input[name=disposition][data-key="' + key + '"]');
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
    else if (t.closest("[data-edit-notes]")) editNotes(t.closest("[data-edit-notes]").dataset.editNotes);
    else if (t.closest("[data-notes-cancel]")) closeNotes(t);
    else if (t.closest("[data-sound-toggle]")) toggleSound();
    else if (t.closest("[data-notify-ask]")) askNotifications();
  }

  function init() {
    root = $("#desk-root");
    if (!root) return;
    htmx.config.wsReconnectDelay = reconnectDelay;
    document.body.addEventListener("htmx:wsOpen", onOpen);
    document.body.addEventListener("htmx:wsAfterMessage", onMessage);
    document.body.addEventListener("htmx:wsClose", onClose);
    document.body.addEventListener("htmx:wsError", function () { banner(true); });
    document.body.addEventListener("htmx:afterSettle", sync);
    document.body.addEventListener("htmx:oobAfterSwap", sync);
    document.body.addEventListener("change", function (e) {
      if (e.target && e.target.name === "disposition") sync();
    });
    document.body.addEventListener("input", function (e) {
      // Words in "Other" pick "Other".
      if (e.target && e.target.id === "skip-other") {
        var other = document.querySelector("#skip-form input[name=reason][value=Other]");
        if (other) other.checked = true;
      }
    });
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("focus", onVisible);
    var preview = $("#desk-preview");
    lastLead = preview ? preview.dataset.leadId || "" : "";
    showSound();
    showNotify();
    document.addEventListener("keydown", onKey);
    document.addEventListener("focusin", onFocusIn);
    document.addEventListener("focusout", onFocusOut);
    document.addEventListener("click", onClick);
    setInterval(tick, 1000);
    sync();
  }

  // Deferred like htmx and its ws extension, so this runs after both are defined and after the
  // document is parsed, but before DOMContentLoaded, when htmx processes the page and the
  // extension opens the socket: createWebSocket is wrapped and the listeners are in place first.
  init();
})();
