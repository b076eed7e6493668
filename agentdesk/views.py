from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from agentdesk.roles import is_agent, is_supervisor


@login_required
def home(request):
    """Send each role to its own screen."""
    if is_supervisor(request.user):
        return redirect("supervisor:dashboard")
    if is_agent(request.user):
        return redirect("desk:desk")
    if request.user.is_staff:
        return redirect("admin:index")
    return redirect("logout")
