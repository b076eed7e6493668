from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from agentdesk import services, signin, wallboard
from agentdesk.board import BOARD_TEMPLATE, board_rows, board_totals
from agentdesk.forms import AuditFilterForm, ReportForm, report_query
from agentdesk.models import Agent
from agentdesk.roles import supervisor_required
from agentdesk.selectors import audit_entries
from calls.providers.base import ProviderError
from calls.services import Refusal

AUDIT_TEMPLATE = "board/audit.html"
AUDIT_PAGE_SIZE = 50
REPORTS_TEMPLATE = "supervisor/reports.html"
REPORT_ZONE = "report_tz"  # the session's key for the zone the supervisor last read a report in


@supervisor_required
def agent_board(request):
    template = f"{BOARD_TEMPLATE}#board" if request.htmx else BOARD_TEMPLATE
    context = {"rows": board_rows(), "totals": board_totals(), "lockouts": signin.lockouts_for_supervisor()}
    return render(request, template, context)


@supervisor_required
def wallboard_page(request):
    """The floor on a TV: every figure group, then live over the supervisors' socket."""
    return render(request, wallboard.TEMPLATE, wallboard.context())


def _board_agent(agent_id: int) -> Agent:
    agent = get_object_or_404(Agent.objects.select_related("user"), pk=agent_id)
    if not board_rows([agent.pk]):
        raise Http404("Not an agent on the board.")
    return agent


def _row(request, agent: Agent, error: str = ""):
    """The agent's re-rendered row, with what went wrong in plain words."""
    context = {"row": board_rows([agent.pk])[0], "error": error}
    return render(request, f"{BOARD_TEMPLATE}#agent-row", context)


def _intervene(request, agent: Agent, action) -> HttpResponse:
    try:
        action()
    except Refusal as exc:
        return _row(request, agent, exc.message)
    except ProviderError as exc:
        code = f" (code {exc.code})" if exc.code else ""
        return _row(request, agent, f"The telephony platform refused: {exc.message}{code}")
    return _row(request, agent)


@require_POST
@supervisor_required
def agent_reclaim(request, agent_id: int):
    """Give the leads an agent holds back to the queue; answers the agent's re-rendered row."""
    agent = _board_agent(agent_id)
    return _intervene(request, agent, lambda: services.lease_reclaim(agent=agent, by=request.user))


@require_POST
@supervisor_required
def agent_not_ready(request, agent_id: int):
    """Set an agent Not ready with a reason (on the platform too); answers the agent's row."""
    agent = _board_agent(agent_id)
    reason = request.POST.get("reason", "")
    return _intervene(
        request, agent, lambda: services.agent_force_not_ready(agent=agent, by=request.user, reason=reason)
    )


@require_POST
@supervisor_required
def agent_sign_out(request, agent_id: int):
    """Sign an agent out (leads released, platform sessions signed out); answers the agent's row."""
    agent = _board_agent(agent_id)
    return _intervene(request, agent, lambda: services.agent_force_sign_out(agent=agent, by=request.user))


@require_GET
@supervisor_required
def audit_log(request):
    """Every intervention, newest first, filtered by agent, campaign or action."""
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    entries = audit_entries(
        agent=filters.get("agent"), campaign=filters.get("campaign"), action=filters.get("action") or ""
    )
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, AUDIT_TEMPLATE, context)


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


def _report_form(request) -> ReportForm:
    """The report's choices from the GET parameters, defaults filled in; a valid zone is kept in
    the session, so the next report opens in the supervisor's own time zone."""
    form = ReportForm(report_query(request.GET, request.session.get(REPORT_ZONE) or settings.TIME_ZONE))
    if form.is_valid() and request.session.get(REPORT_ZONE) != form.cleaned_data["tz"]:
        request.session[REPORT_ZONE] = form.cleaned_data["tz"]
    return form


@require_GET
@supervisor_required
def reports_page(request):
    """Calls, connects, contact rate, talk, wrap-up, Not ready, callbacks and dispositions over a
    date range, by day, campaign or agent, with a chart; 400 with the form's words when a choice
    is wrong."""
    form = _report_form(request)
    if not form.is_valid():
        return render(request, REPORTS_TEMPLATE, {"form": form, "report": None}, status=400)
    report = form.build()
    context = {"form": form, "report": report, "query": request.GET.urlencode()}
    return render(request, REPORTS_TEMPLATE, context)


@require_GET
@supervisor_required
def reports_csv(request):
    """The same table as CSV, streamed, every cell formula-safe; 400 in words when a choice is wrong."""
    form = _report_form(request)
    if not form.is_valid():
        return HttpResponse(
            f"The report's choices are not valid ({form.problems()}).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    report = form.build()
    response = StreamingHttpResponse(report.csv_lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
    return response
