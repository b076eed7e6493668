"""The calls engine: every write about calls, platform sessions and platform signals.

A package of modules a newcomer can name, each re-exported here:

- :mod:`~calls.services.sessions`: who the platform knows an agent as; sign in and out, ready
  and not ready, ask for an offer, give one back (synchronous platform requests);
- :mod:`~calls.services.presence`: the agent's presence, and the states the platform reports
  (echoes of our own asks versus changes made elsewhere);
- :mod:`~calls.services.life`: the call's state machine and the agent's commands (dial, end,
  dispose);
- :mod:`~calls.services.placing`: placing, hanging up and disposing on the platform, at most once
  (called by ``calls.tasks``);
- :mod:`~calls.services.signals`: platform signals in (callbacks, stream events, offers);
- :mod:`~calls.services.reconcile`: calls whose final signal never came;
- :mod:`~calls.services.events`: events out, after each commit, to the desks and supervisors.

Services are keyword-only and atomic; side effects (Celery tasks, live events) happen only
after the commit. Refusals an agent should read raise :class:`Refusal`; platform failures
surface as :class:`calls.providers.base.ProviderError`. The engine never imports the desk: it
reaches browsers only through ``agentdesk.live`` events (docs/architecture.md).
"""

from calls.services.errors import Refusal
from calls.services.life import (
    FAILURE_REASONS,
    TERMINAL_STATES,
    call_advance,
    call_correct_notes,
    call_dial,
    call_dispose,
    call_end,
    call_fail,
    call_record_skip,
    call_save_draft,
)
from calls.services.placing import (
    PlaceOutcome,
    call_hang_up,
    call_place,
    call_place_give_up,
    call_platform_dispose,
    call_platform_end_refused,
    call_platform_end_retry,
    callback_urls,
    dial_request,
)
from calls.services.presence import (
    NOT_READY,
    PLATFORM_PRESENCE,
    PLATFORM_REASON,
    READY,
    REREAD_SOURCE,
    PlatformAsk,
    agent_apply_platform_state,
    platform_ask,
    platform_ask_sign_in,
    platform_ask_stands,
    platform_signed_out,
    presence_write,
    set_presence,
)
from calls.services.reconcile import calls_reconcile
from calls.services.sessions import (
    CAMPAIGN_PAUSED,
    agent_identity,
    agent_login,
    campaign_paused_on_platform,
    offer_skip,
    platform_request_offer,
    platform_set_ready,
    platform_sign_in,
    platform_sign_out,
    provider_for,
    session_listening,
    session_save_state,
)
from calls.services.signals import call_apply_signal, lead_from_offer

__all__ = [
    "CAMPAIGN_PAUSED",
    "FAILURE_REASONS",
    "NOT_READY",
    "PLATFORM_PRESENCE",
    "PLATFORM_REASON",
    "READY",
    "REREAD_SOURCE",
    "TERMINAL_STATES",
    "PlaceOutcome",
    "PlatformAsk",
    "Refusal",
    "agent_apply_platform_state",
    "agent_identity",
    "agent_login",
    "call_advance",
    "call_apply_signal",
    "call_correct_notes",
    "call_dial",
    "call_dispose",
    "call_end",
    "call_fail",
    "call_hang_up",
    "call_place",
    "call_place_give_up",
    "call_platform_dispose",
    "call_platform_end_refused",
    "call_platform_end_retry",
    "call_record_skip",
    "call_save_draft",
    "callback_urls",
    "calls_reconcile",
    "campaign_paused_on_platform",
    "dial_request",
    "lead_from_offer",
    "offer_skip",
    "platform_ask",
    "platform_ask_sign_in",
    "platform_ask_stands",
    "platform_request_offer",
    "platform_set_ready",
    "platform_sign_in",
    "platform_sign_out",
    "platform_signed_out",
    "presence_write",
    "provider_for",
    "session_listening",
    "session_save_state",
    "set_presence",
]
