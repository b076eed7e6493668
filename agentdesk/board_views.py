from django.shortcuts import render

from agentdesk.board import BOARD_TEMPLATE, board_rows
from agentdesk.roles import supervisor_required


@supervisor_required
def agent_board(request):
    template = f"{BOARD_TEMPLATE}#board" if request.htmx else BOARD_TEMPLATE
    return render(request, template, {"rows": board_rows()})
