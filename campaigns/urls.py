from django.urls import path

from campaigns import views

app_name = "supervisor"

upload = "campaigns/<int:campaign_id>/uploads/<int:upload_id>/"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:campaign_id>/status/", views.campaign_status, name="campaign_status"),
    path("campaigns/<int:campaign_id>/token/", views.campaign_token, name="campaign_token"),
    path(
        "campaigns/<int:campaign_id>/token/rotate/", views.campaign_token_rotate, name="campaign_token_rotate"
    ),
    path("campaigns/<int:campaign_id>/sync/", views.campaign_sync, name="campaign_sync"),
    path("campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="campaign_export"),
    path("campaigns/<int:campaign_id>/breakdown/", views.campaign_breakdown, name="campaign_breakdown"),
    path("campaigns/<int:campaign_id>/uploads/", views.upload_create, name="upload_create"),
    path(
        "campaigns/<int:campaign_id>/uploads/resumable/",
        views.upload_resumable_start,
        name="upload_resumable_start",
    ),
    path(
        "campaigns/<int:campaign_id>/uploads/resumable/<uuid:resumable_id>/",
        views.upload_resumable,
        name="upload_resumable",
    ),
    path(
        "campaigns/<int:campaign_id>/uploads/resumable/<uuid:resumable_id>/finish/",
        views.upload_resumable_finish,
        name="upload_resumable_finish",
    ),
    path(upload, views.upload_detail, name="upload"),
    path(upload + "progress/", views.upload_progress, name="upload_progress"),
    path(upload + "mapping/", views.upload_mapping, name="upload_mapping"),
    path(upload + "sheet/", views.upload_sheet, name="upload_sheet"),
    path(upload + "import/", views.upload_import, name="upload_import"),
    path(upload + "cancel/", views.upload_cancel, name="upload_cancel"),
    path(upload + "undo/", views.upload_undo, name="upload_undo"),
    path(upload + "issues.csv", views.upload_issues, name="upload_issues"),
    path("dnc/", views.dnc, name="dnc"),
    path("dnc/upload/", views.dnc_upload, name="dnc_upload"),
    path("dnc/remove/", views.dnc_remove, name="dnc_remove"),
    # The CRM intake API: Ryng's Append Campaign body, a per-campaign bearer token.
    path("api/campaigns/<int:campaign_id>/leads", views.intake, name="intake"),
]
