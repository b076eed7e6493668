from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from agentdesk import board_views, health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("desk/", include("agentdesk.desk_urls")),
    path("supervisor/agents/", board_views.agent_board, name="agent-board"),
    path("supervisor/agents/<int:agent_id>/reclaim/", board_views.agent_reclaim, name="agent-reclaim"),
    path("supervisor/agents/<int:agent_id>/not-ready/", board_views.agent_not_ready, name="agent-not-ready"),
    path("supervisor/agents/<int:agent_id>/sign-out/", board_views.agent_sign_out, name="agent-sign-out"),
    path("supervisor/audit/", board_views.audit_log, name="audit"),
    path("supervisor/wallboard/", board_views.wallboard_page, name="wallboard"),
    path("supervisor/reports/", board_views.reports_page, name="reports"),
    path("supervisor/reports/report.csv", board_views.reports_csv, name="reports-csv"),
    path("supervisor/agents/unlock/", board_views.signin_unlock, name="signin-unlock"),
    path("supervisor/", include("campaigns.urls")),
    path("calls/", include("calls.urls")),
    path("admin/", admin.site.urls),
]
