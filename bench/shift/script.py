"""What the platforms do during the shift: each dial's outcome, scripted on the emulator for the
lead's number just before the agent dials (``POST /_emulator/outcomes``, docs/emulators.md), in
the proportions of :class:`Mix`; and the faults a floor meets (:class:`Chaos`): refused and slow
dial requests, dropped, duplicated and failed callbacks, Huawei GUID rotations, CometD drops.
All durations are platform seconds.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Mix:
    """Proportions of a floor. ``outcomes``: (kind, weight) of each dial; the rest are rates per
    lead (``skip``) or per idle moment (``sign_out_rate``, ``break_rate``)."""

    outcomes: tuple[tuple[str, float], ...] = (
        ("no_answer", 0.22),
        ("busy", 0.10),
        ("fail", 0.04),
        ("error", 0.04),  # the dial request itself is refused
        ("short", 0.38),  # 15-90 s, the customer hangs up half the time
        ("long", 0.18),  # 4-12 min, the agent ends it
        ("very_long", 0.04),  # 16-30 min: longer than the reconciler's old 15-minute limit
    )
    skip: float = 0.10
    sign_out_rate: float = 0.02
    break_rate: float = 0.04
    patience_seconds: float = 120  # stuck before the customer answers this long: the agent ends it


@dataclass(frozen=True)
class CallPlan:
    kind: str
    result: str  # the emulator's: answer, no_answer, busy, fail, error
    agent_ring_seconds: float
    ring_seconds: float
    talk_seconds: float | None  # the customer hangs up after; None: until the agent ends
    agent_ends_after: float | None  # seconds after connecting when the agent presses End


class Script:
    def __init__(self, emulator_url: str, mix: Mix | None = None):
        self.emulator_url = emulator_url
        self.mix = mix or Mix()
        self.http = requests.Session()
        self.lock = threading.Lock()

    def plan(self, rng: random.Random) -> CallPlan:
        kinds, weights = zip(*self.mix.outcomes, strict=True)
        kind = rng.choices(kinds, weights)[0]
        agent_ring = rng.uniform(1, 4)
        if kind in ("no_answer", "busy", "fail", "error"):
            ring = {"no_answer": rng.uniform(15, 30), "busy": rng.uniform(2, 5)}.get(kind, rng.uniform(1, 3))
            return CallPlan(kind, kind, agent_ring, ring, None, None)
        talk = {
            "short": rng.uniform(15, 90),
            "long": rng.uniform(240, 720),
            "very_long": rng.uniform(960, 1800),
        }[kind]
        ring = rng.uniform(3, 15)
        if kind == "short" and rng.random() < 0.5:
            # The customer hangs up; the agent would notice silence 30 s later at the latest.
            return CallPlan(kind, "answer", agent_ring, ring, talk, talk + 30)
        return CallPlan(kind, "answer", agent_ring, ring, None, talk)

    def apply(self, plan: CallPlan, number: str) -> None:
        body: dict[str, Any] = {
            "number": number,
            "result": plan.result,
            "agent_ring_seconds": plan.agent_ring_seconds,
            "ring_seconds": plan.ring_seconds,
            "talk_seconds": plan.talk_seconds,
        }
        with self.lock:
            self.http.post(
                f"{self.emulator_url}/_emulator/outcomes", json=body, timeout=10
            ).raise_for_status()

    @staticmethod
    def disposition_outcome(rng: random.Random, connected: bool, state: str) -> str:
        """A disposition's outcome (final, retry, callback, dnc) as an agent would pick it."""
        if connected and state == "ended":
            return rng.choices(["final", "callback", "retry", "dnc"], [0.6, 0.25, 0.1, 0.05])[0]
        return rng.choices(["retry", "final"], [0.85, 0.15])[0]

    @staticmethod
    def note(rng: random.Random, outcome: str) -> str:
        notes = {
            "final": ["Renewed for a year.", "Not interested, polite.", "Already switched <b>provider</b>."],
            "callback": ["Asked to call back tomorrow.", "Busy at work; call tomorrow same time."],
            "retry": ["No answer.", "Line busy.", "Rang out."],
            "dnc": ["Asked never to be called again."],
        }
        return rng.choice(notes[outcome])


# The faults a floor meets, by weight. Paths are prefixes (docs/emulators.md "faults").
FAULTS: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("dial refused (500)", 3, {"kind": "500", "platform": "ryng", "path": "/rest-api/v1/preview/call"}),
    (
        "dial answered slowly (12 s)",
        2,
        {"kind": "slow", "platform": "ryng", "path": "/rest-api/v1/preview/call", "seconds": 12},
    ),
    (
        "Huawei callout answered slowly (12 s)",
        1,
        {"kind": "slow", "platform": "huawei", "path": "/agentgateway/resource/voicecall/", "seconds": 12},
    ),
    (
        "Huawei callout refused (500)",
        1,
        {"kind": "500", "platform": "huawei", "path": "/agentgateway/resource/voicecall/"},
    ),
    (
        "Genesys request refused (500)",
        1,
        {"kind": "500", "platform": "genesys", "path": "/api/v2/me/devices/"},
    ),
)
CALLBACK_FAULTS: tuple[tuple[str, str], ...] = (
    ("duplicate", "customer-connected"),
    ("duplicate", "call-ended"),
    ("drop", "agent-connected"),
    ("drop", "call-ended"),
    ("fail", "call-ended"),  # its first attempt counts as failed: delivered by the retry
    ("fail", "customer-connected"),
)


class Chaos(threading.Thread):
    """Every ``every`` platform seconds, one misfortune on the floor, recorded in ``done``."""

    def __init__(
        self,
        *,
        emulator_url: str,
        scale: float,
        every: float,
        huawei_agents: list[str],
        stop: threading.Event,
        seed: int,
    ):
        super().__init__(name="chaos", daemon=True)
        self.emulator_url, self.scale, self.every = emulator_url, scale, every
        self.huawei_agents, self.stop = huawei_agents, stop
        self.rng = random.Random(seed)
        self.done: dict[str, int] = {}

    def run(self) -> None:
        http = requests.Session()
        while not self.stop.wait(self.every * self.scale * self.rng.uniform(0.5, 1.5)):
            roll = self.rng.random()
            try:
                if roll < 0.45:
                    names, weights, bodies = zip(*FAULTS, strict=True)
                    index = self.rng.choices(range(len(names)), weights)[0]
                    name = names[index]
                    http.post(f"{self.emulator_url}/_emulator/faults", json=bodies[index], timeout=10)
                elif roll < 0.8:
                    kind, label = self.rng.choice(CALLBACK_FAULTS)
                    name = f"callback {label} {kind}"
                    http.post(
                        f"{self.emulator_url}/_emulator/callback-faults",
                        json={"kind": kind, "label": label, "count": 1},
                        timeout=10,
                    )
                elif roll < 0.9 and self.huawei_agents:
                    name = "Huawei GUID rotated"
                    agent = self.rng.choice(self.huawei_agents)
                    http.post(f"{self.emulator_url}/_emulator/huawei/agents/{agent}/rotate-guid", timeout=10)
                else:
                    name = "CometD clients dropped"
                    http.post(f"{self.emulator_url}/_emulator/genesys/drop-clients", timeout=10)
            except requests.RequestException as exc:
                name = f"chaos request failed: {exc}"
            self.done[name] = self.done.get(name, 0) + 1
