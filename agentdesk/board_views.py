from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from agentdesk import services, signin, wallboard
from agentdesk.board import BOARD_TEMPLATE, board_rows, board_totals
from agentdesk.models import Agent
from agentdesk.roles import supervisor_required


@supervisor_required
def agent_board(request):
    template = f"{BOARD_TEMPLATE}#board" if request.htmx else BOARD_TEMPLATE
    context = {"rows": board_rows(), "totals": board_totals(), "lockouts": signin.lockouts_for_supervisor()}
    return render(request, template, context)


@supervisor_required
def wallboard_page(request):
    """The floor on a TV: every figure group, then live over the supervisors' socket."""
    return render(request, wallboard.TEMPLATE, wallboard.context())


@require_POST
@supervisor_required
def agent_reclaim(request, agent_id: int):
    """Give the leads an agent holds back to the queue; answers the agent's re-rendered row."""
    agent = get_object_or_404(Agent, pk=agent_id)
    rows = board_rows([agent.pk])
    if not rows:
        raise Http404("Not an agent on the board.")
    services.lease_reclaim(agent=agent)
    return render(request, f"{BOARD_TEMPLATE}#agent-row", {"row": board_rows([agent.pk])[0]})


@require_POST
@supervisor_required
def signin_unlock(request):
    """Lift a sign-in lockout listed on the board (an agent's username or an address)."""
    kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
    if signin.unlock(kind=kind, value=value, by=request.user.get_username()):
        messages.success(request, f"Unlocked {value}: they can sign in again.")
    else:
        messages.error(request, "That sign-in is not locked out (any more).")
    return redirect("agent-board")
