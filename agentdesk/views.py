from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control

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


@cache_control(max_age=86400, public=True)
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: send them to the static icon
    (pages name it with <link rel="icon">)."""
    return redirect(static("favicon.ico"))
