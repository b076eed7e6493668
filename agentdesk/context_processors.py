from agentdesk.roles import is_agent, is_supervisor


def roles(request):
    user = getattr(request, "user", None)
    return {
        "is_agent": bool(user and is_agent(user)),
        "is_supervisor": bool(user and is_supervisor(user)),
    }
