"""One simulated agent: signs in, opens the desk's socket, and works leads the way the desk's
own page does (htmx requests with ``HX-Request``, ``X-Desk-Tab`` and ``X-CSRFToken``; every
answer arrives through the tab's socket). What the agent knows of its desk is only what the
socket's frames said (:class:`DeskView`), so the end-of-shift check can compare the last frame
with the desk re-read over HTTP.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bench.shift.script import CallPlan, Script
from tests.calls.wsclient import WebSocketClosed, WSClient

PASSWORD = "demo"
# A browser waits for an answer (htmx sets no timeout); a loaded two-core machine with 30 desks
# on one daphne can take a while to sign everyone in (each sign-in hashes a password).
TIMEOUT = 120

# The panels' stable ids and the data attributes the desk's template puts on them
# (templates/desk/desk.html): the simulator reads nothing else.
PANEL_RE = re.compile(r'<(?:div|section) id="desk-(presence|alert|preview|call|dispose)"[^>]*>')
ATTR_RE = re.compile(r'data-([a-z-]+)="([^"]*)"')
SELECTED_CAMPAIGN_RE = re.compile(r'<option value="(\d+)" selected>')
# Each disposition's radio, read whatever the order of its attributes (the desk added data-key).
DISPOSITION_TAG_RE = re.compile(r'<input[^>]*\bname="disposition"[^>]*>')
VALUE_RE = re.compile(r'\bvalue="(\d+)"')
OUTCOME_RE = re.compile(r'\bdata-outcome="(\w+)"')


def dispositions_in(body: str) -> list[tuple[str, str]]:
    """(id, outcome) of every disposition the dispose panel offers."""
    found = []
    for tag in DISPOSITION_TAG_RE.findall(body):
        value, outcome = VALUE_RE.search(tag), OUTCOME_RE.search(tag)
        if value and outcome:
            found.append((value.group(1), outcome.group(1)))
    return found


CALLBACK_MIN_RE = re.compile(r'id="dispose-callback" name="callback_at" value="[^"]*" min="([^"]+)"')
NUMBER_RE = re.compile(r'id="lead-number">([^<]+)<')
ALERT_RE = re.compile(r'<span class="alert-text">([^<]*)</span>')
TAB_RE = re.compile(r'ws-connect="/ws/desk/\?tab=([0-9a-f]+)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def read_panels(html: str) -> dict[str, dict[str, Any]]:
    """Each desk panel found in ``html`` (a frame, or the whole desk over HTTP) with what it
    shows: its data attributes, plus the lead's number, the disposition choices, the alert."""
    panels: dict[str, dict[str, Any]] = {}
    found = list(PANEL_RE.finditer(html))
    for index, match in enumerate(found):
        body = html[match.start() : found[index + 1].start() if index + 1 < len(found) else len(html)]
        facts: dict[str, Any] = dict(ATTR_RE.findall(match.group(0)))
        name = match.group(1)
        if name == "preview":
            number = NUMBER_RE.search(body)
            facts["number"] = number.group(1).strip() if number else ""
        elif name == "dispose":
            facts["dispositions"] = dispositions_in(body)
            callback_min = CALLBACK_MIN_RE.search(body)
            facts["callback_min"] = callback_min.group(1) if callback_min else ""
        elif name == "alert":
            alert = ALERT_RE.search(body)
            facts["text"] = alert.group(1).strip() if alert else ""
        panels[name] = facts
    return panels


def desk_facts(panels: dict[str, dict[str, Any]], campaign: str = "") -> dict[str, str]:
    """What two renderings of one desk must agree on (the alert is a passing note, left out)."""
    return {
        "campaign": campaign,
        "presence": panels.get("presence", {}).get("presence", ""),
        "lead": panels.get("preview", {}).get("lead-id", ""),
        "call": panels.get("call", {}).get("call-id", ""),
        "call_state": panels.get("call", {}).get("state", ""),
        "dispose_call": panels.get("dispose", {}).get("call-id", ""),
    }


@dataclass
class DeskView:
    """The desk as its socket drew it: the last frame of each panel wins (frames of one socket
    are rendered in order, at delivery; docs/events.md)."""

    panels: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaign: str = ""
    frames: int = 0
    mains: int = 0  # whole-desk frames: every command's answer to its tab is one
    last_frame_at: float = 0.0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=4))  # shown when a check breaks

    def apply(self, frame: str) -> None:
        self.recent.append(frame)
        self.panels.update(read_panels(frame))
        if 'id="desk-main"' in frame:
            self.mains += 1
            selected = SELECTED_CAMPAIGN_RE.search(frame)
            self.campaign = selected.group(1) if selected else ""
        self.frames += 1
        self.last_frame_at = time.monotonic()

    def facts(self) -> dict[str, str]:
        return desk_facts(self.panels, self.campaign)

    def get(self, panel: str, key: str, default: Any = "") -> Any:
        return self.panels.get(panel, {}).get(key, default)


@dataclass
class Stats:
    """What one agent did, summed over the floor at the end."""

    counts: dict[str, int] = field(default_factory=dict)
    # (lead id, first frame showing it, when we asked to let it go): the lease check's evidence.
    holds: list[tuple[int, float, float]] = field(default_factory=list)
    ended_by_agent: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class SimulatedAgent(threading.Thread):
    """Works one desk for the shift; see the module docstring. ``scale`` is real seconds per
    platform second (``EMULATOR_TIME_SCALE``): the agent's own pauses are compressed alike."""

    def __init__(
        self,
        *,
        username: str,
        campaign_id: int,
        base_url: str,
        emulator_url: str,
        script: Script,
        scale: float,
        seed: int,
    ):
        super().__init__(name=f"agent-{username}", daemon=True)
        self.username, self.campaign_id = username, str(campaign_id)
        self.base_url, self.emulator_url = base_url, emulator_url
        self.script, self.scale = script, scale
        self.random = random.Random(seed)
        self.stats = Stats()
        self.view = DeskView()
        self.changed = threading.Condition()
        self.session: requests.Session | None = None
        self.socket: WSClient | None = None
        self.tab = ""
        self.reader: threading.Thread | None = None
        self.reading = threading.Event()
        self.plan: CallPlan | None = None
        self.held: tuple[int, float] | None = None
        self.seen: tuple[int, float, float | None] = (0, 0.0, None)  # call id, first seen, connected
        self.final: dict[str, Any] = {}
        self.done = threading.Event()
        self.wind_down = threading.Event()

    # -- the browser's side ------------------------------------------------------------------
    def sign_in(self) -> None:
        session = requests.Session()
        # A pooled connection the server closed while idle fails the next request before the
        # server read it; a browser opens a new connection then, and so do we (once).
        retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods=None)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        form = session.get(f"{self.base_url}/login/", timeout=TIMEOUT)
        token = CSRF_RE.search(form.text)
        answer = session.post(
            f"{self.base_url}/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        if answer.status_code != 302 or "sessionid" not in session.cookies:
            raise RuntimeError(f"sign-in as {self.username} failed ({answer.status_code})")
        self.session = session
        page = session.get(f"{self.base_url}/desk/", timeout=TIMEOUT)
        page.raise_for_status()
        tab = TAB_RE.search(page.text)
        if not tab:
            raise RuntimeError("the desk page names no tab")
        self.tab = tab.group(1)
        self.stats.add("sign-ins")
        self._open_socket()

    def _open_socket(self) -> None:
        assert self.session is not None
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        url = self.base_url.replace("http://", "ws://") + f"/ws/desk/?tab={self.tab}"
        with self.changed:
            self.view = DeskView()
        self.socket = WSClient(url, cookie=cookie, timeout=TIMEOUT)
        self.reading.set()
        self.reader = threading.Thread(target=self._read, args=(self.socket,), daemon=True)
        self.reader.start()
        self._wait_frames(lambda view: view.mains >= 1, 60)

    def _read(self, socket: WSClient) -> None:
        while self.reading.is_set():
            try:
                frame = socket.recv(timeout=1)
            except TimeoutError:
                continue
            except (WebSocketClosed, OSError):
                if self.reading.is_set():
                    self.stats.add("socket drops")
                return
            with self.changed:
                self.view.apply(frame)
                self.changed.notify_all()

    def _close_socket(self) -> None:
        self.reading.clear()
        if self.socket is not None:
            self.socket.close()
        if self.reader is not None:
            self.reader.join(5)
        self.socket = None

    def _reconnect_if_dropped(self) -> None:
        if self.reader is not None and not self.reader.is_alive() and self.reading.is_set():
            self._close_socket()
            self._open_socket()  # the desk does the same: its first frame is the whole desk

    def post(self, path: str, data: dict[str, str] | None = None) -> requests.Response:
        """A desk command as htmx sends it; its answer comes through the socket (204 here)."""
        assert self.session is not None
        before, frames = self.view.mains, self.view.frames
        answer = self.session.post(
            f"{self.base_url}{path}",
            data=data or {},
            headers={
                "HX-Request": "true",
                "X-Desk-Tab": self.tab,
                "X-CSRFToken": self.session.cookies.get("csrftoken", ""),
            },
            timeout=TIMEOUT,
        )
        self.stats.add("POST " + [part for part in path.split("/") if part and not part.isdigit()][-1])
        if answer.status_code >= 400:
            self.stats.add(f"HTTP {answer.status_code}")
            self.stats.errors.append(f"{path} answered {answer.status_code}")
        elif path == "/desk/next/":  # answered with the preview, call and dispose panels
            self._wait_frames(lambda view: view.frames > frames, 60)
        elif answer.status_code == 204 and path not in ("/desk/renew/", "/desk/draft/"):  # no answer
            self._wait_frames(lambda view: view.mains > before, 60)  # the whole desk
        return answer

    def _wait_frames(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.view):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
        return True

    def sleep(self, platform_seconds: float) -> None:
        """A pause of the agent's, in platform seconds (compressed like the emulators'); the end
        of the shift cuts it short."""
        self.wind_down.wait(max(0.05, platform_seconds * self.scale))

    def sign_out(self) -> None:
        self._let_go()
        assert self.session is not None
        self.session.post(
            f"{self.base_url}/logout/",
            headers={"X-CSRFToken": self.session.cookies.get("csrftoken", "")},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        self._close_socket()
        self.stats.add("sign-outs")

    # -- the agent's side ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.sign_in()
            while not self.wind_down.is_set():
                try:
                    self.step()
                except requests.RequestException as exc:  # counted and reported; the shift goes on
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(1)
            self.finish()
        except Exception as exc:  # reported, never hidden: the run fails on it
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()

    def _look(self) -> tuple[dict[str, str], DeskView]:
        with self.changed:
            return self.view.facts(), self.view

    def step(self) -> None:
        self._reconnect_if_dropped()
        facts, view = self._look()
        self._track_hold(facts)
        state = facts["call_state"]
        if facts["campaign"] != self.campaign_id and state in ("", "idle", "previewing"):
            self.post("/desk/campaign/", {"campaign": self.campaign_id})
        elif view.get("call", "live") == "1":
            self.on_live_call(facts)
        elif state in ("ended", "failed"):
            self.dispose(facts)
        elif facts["lead"]:
            self.on_lead(facts)
        elif facts["presence"] != "ready":
            self.post("/desk/presence/", {"presence": "ready", "campaign": self.campaign_id})
        else:
            self.wait_for_lead()

    def _track_hold(self, facts: dict[str, str]) -> None:
        lead = int(facts["lead"]) if facts["lead"] else None
        if self.held and self.held[0] != lead:
            # Let go without our asking (a lease expiry, a reclaim): the hold ended by now.
            self.stats.holds.append((self.held[0], self.held[1], time.monotonic()))
            self.held = None
        if lead and not self.held:
            self.held = (lead, time.monotonic())

    def _let_go(self) -> None:
        """About to ask for the lead to be released (skip, dispose, Offline, sign-out): the hold
        ends no later than this moment."""
        if self.held:
            self.stats.holds.append((self.held[0], self.held[1], time.monotonic()))
            self.held = None

    def wait_for_lead(self) -> None:
        # The desk polls /desk/next/ while Ready with an empty desk (5 s, then less often).
        frames = self.view.frames
        if not self._wait_frames(lambda view: view.frames > frames, 5):
            self.post("/desk/next/", {"attempt": "0"})
        # A break now and then, or the end of a session: both after a lead-less moment.
        roll = self.random.random()
        if roll < self.script.mix.sign_out_rate:
            self.sign_out()
            self.sleep(self.random.uniform(60, 300))
            self.sign_in()
        elif roll < self.script.mix.sign_out_rate + self.script.mix.break_rate:
            self.post("/desk/presence/", {"presence": "not_ready", "reason": "Break"})
            self.stats.add("breaks")
            self.sleep(self.random.uniform(60, 240))

    def on_lead(self, facts: dict[str, str]) -> None:
        self.sleep(self.random.uniform(3, 15))  # reading the preview
        if self.wind_down.is_set():
            return  # no new dial once the shift is over
        if self.random.random() < self.script.mix.skip:
            reason = self.random.choice(["Not a good time", "Bad data", "Duplicate"])
            self._let_go()
            self.post(f"/desk/leads/{facts['lead']}/skip/", {"reason": reason})
            self.stats.add("skips")
            return
        number = self.view.get("preview", "number")
        self.plan = self.script.plan(self.random)
        self.script.apply(self.plan, number)
        self.stats.add(f"plan {self.plan.kind}")
        self.post(f"/desk/leads/{facts['lead']}/dial/")
        self.stats.add("dials")

    def on_live_call(self, facts: dict[str, str], hurry: bool = False) -> None:
        """Wait for the call; End it when the plan says the agent hangs up, when it is stuck
        before the customer answers for longer than the agent's patience (the desk's note says
        to), or at once when ``hurry`` (the shift is over)."""
        now = time.monotonic()
        call_id = int(facts["call"]) if facts["call"] else 0
        if self.seen[0] != call_id:
            self.seen = (call_id, now, None)
        if facts["call_state"] == "connected" and self.seen[2] is None:
            self.seen = (call_id, self.seen[1], now)
        first_seen, connected_at = self.seen[1], self.seen[2]
        plan = self.plan
        due = None
        if hurry:
            due = now
        elif connected_at is not None:
            if plan is not None and plan.agent_ends_after is not None:
                due = connected_at + plan.agent_ends_after * self.scale
        elif now - first_seen > max(self.script.mix.patience_seconds * self.scale, 20):
            due = now
        if due is not None and now >= due:
            self.stats.ended_by_agent.add(call_id)
            self.stats.add("ended by agent" if connected_at is not None else "gave up waiting")
            self.post(f"/desk/calls/{call_id}/end/")
            # The End goes through a task: wait for the call to leave its live state.
            if not self._wait_frames(lambda view: view.get("call", "live") != "1", 5):
                # Still up: the platform never sent the ids to end it from the desk (Ryng, a dial
                # answer lost), and the desk says to hang up the phone. A person does.
                if self.hang_up_phone(call_id):
                    self.stats.add("phones hung up (End could not reach the platform)")
                self._wait_frames(lambda view: view.get("call", "live") != "1", 25)
            return
        frames = self.view.frames
        self._wait_frames(lambda view: view.frames > frames, 1)

    def hang_up_phone(self, call_id: int) -> bool:
        """The agent's phone hangs up: the emulator's Ryng call carrying our call's key in its
        callback URL (the platform's side of the line, not the product's) ends without a PATCH."""
        from calls.models import Call

        key = Call.objects.filter(pk=call_id).values_list("key", flat=True).first()
        if key is None:
            return False
        calls = requests.get(f"{self.emulator_url}/_emulator/ryng/calls", timeout=TIMEOUT).json()
        for row in calls:
            if f"call={key}" in (row.get("connectCallbackUrl") or "") and row.get("state") != "ended":
                requests.post(
                    f"{self.emulator_url}/_emulator/ryng/calls/{row['callID']}/hangup", timeout=TIMEOUT
                )
                return True
        return False

    def dispose(self, facts: dict[str, str]) -> None:
        call = facts["call"]
        if not call or facts["dispose_call"] != call:
            self._wait_frames(lambda view: view.facts()["dispose_call"] == call, 5)
        self.sleep(self.random.uniform(5, 20))  # writing notes
        choices = self.view.get("dispose", "dispositions", [])
        if not choices:
            self.stats.errors.append(f"call {call}: no disposition offered")
            self.sleep(5)
            return
        connected = self.plan is not None and self.plan.result == "answer"
        outcome = self.script.disposition_outcome(self.random, connected, facts["call_state"])
        disposition = next((pk for pk, kind in choices if kind == outcome), choices[0][0])
        data = {"call": call, "disposition": disposition, "notes": self.script.note(self.random, outcome)}
        if outcome == "callback":
            data["callback_at"] = self._callback_time()
            self.stats.add("callbacks booked")
        self.post("/desk/draft/", data)
        self._let_go()
        self.post("/desk/dispose/", data)
        self.stats.add(f"disposed {outcome}")
        self.plan = None

    def _callback_time(self) -> str:
        """Tomorrow at the lead's current local time: inside a window the desk showed as open."""
        shown = self.view.get("dispose", "callback_min") or datetime.now().strftime("%Y-%m-%dT%H:%M")
        moment = datetime.strptime(shown, "%Y-%m-%dT%H:%M") + timedelta(days=1)
        return moment.strftime("%Y-%m-%dT%H:%M")

    # -- the end of the shift -----------------------------------------------------------------
    def finish(self) -> None:
        """Close the desk as a careful agent does at the end of a shift: end and dispose the call
        on the desk, go Offline (the lead goes back), then compare the last frame with the desk
        re-read over HTTP, and sign out."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            self._reconnect_if_dropped()
            facts, view = self._look()
            self._track_hold(facts)
            if view.get("call", "live") == "1":
                self.on_live_call(facts, hurry=True)
            elif facts["call_state"] in ("ended", "failed"):
                self.dispose(facts)
            elif facts["presence"] != "offline":
                self._let_go()
                self.post("/desk/presence/", {"presence": "offline"})
            else:
                break
        else:
            self.stats.errors.append("the desk could not be closed within 180 s")
        self.stats.add("seconds to close the desk", int(time.monotonic() - (deadline - 180)))
        self.final = self.compare()
        with contextlib.suppress(requests.RequestException):
            self.sign_out()

    def compare(self, settle: float = 2.0, tries: int = 3) -> dict[str, Any]:
        """The last frame against ``GET /desk/state/``, once the socket has been quiet for
        ``settle`` seconds (a frame on its way is not a disagreement); asked up to ``tries``."""
        assert self.session is not None
        for _ in range(tries):
            self._wait_quiet(settle)
            framed = self._look()[0]
            page = self.session.get(f"{self.base_url}/desk/state/", timeout=TIMEOUT).text
            selected = SELECTED_CAMPAIGN_RE.search(page)
            reread = desk_facts(read_panels(page), selected.group(1) if selected else "")
            if framed == reread:
                return {"agent": self.username, "same": True, "frame": framed}
        return {
            "agent": self.username,
            "same": False,
            "frame": framed,
            "http": reread,
            "recent_frames": list(self.view.recent),
        }

    def _wait_quiet(self, seconds: float) -> None:
        while time.monotonic() - self.view.last_frame_at < seconds:
            time.sleep(0.2)
