from django.urls import path

from agentdesk import desk_views

app_name = "desk"

urlpatterns = [
    path("", desk_views.desk, name="desk"),
    path("state/", desk_views.state, name="state"),
    path("campaign/", desk_views.select_campaign, name="campaign"),
    path("presence/", desk_views.set_presence, name="presence"),
    path("next/", desk_views.next_lead, name="next"),
    path("renew/", desk_views.renew, name="renew"),
    path("leads/<int:lead_id>/dial/", desk_views.dial, name="dial"),
    path("leads/<int:lead_id>/skip/", desk_views.skip, name="skip"),
    path("calls/<int:call_id>/end/", desk_views.end, name="end"),
    path("calls/<int:call_id>/notes/", desk_views.correct_notes, name="notes"),
    path("callbacks/<int:lead_id>/take/", desk_views.take_callback, name="take_callback"),
    path("dispose/", desk_views.dispose, name="dispose"),
    path("draft/", desk_views.draft, name="draft"),
]
