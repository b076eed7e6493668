"""Supervisor pages (namespace ``supervisor``) and the CRM intake API.

Every page is behind ``supervisor_required`` (agents get 403, anonymous users the login page);
fetches go through ``campaigns.selectors``; writes through ``campaigns.services``. The intake
API authenticates with the campaign's own token instead of a session.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from agentdesk.roles import supervisor_required
from calls.selectors import calls_on_desks
from campaigns import export, importer, resumable, selectors, services, sheets, upload_handlers
from campaigns.forms import CampaignForm, DncAddForm, DncUploadForm, ExportFilterForm, UploadForm
from campaigns.models import Campaign, SheetUpload


@supervisor_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "supervisor/dashboard.html", {"campaigns": selectors.campaign_list()})


@supervisor_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, instance=Campaign())
    if request.method == "POST" and form.is_valid():
        campaign = form.save_campaign()
        messages.success(request, f"Campaign {campaign.name} created.")
        return redirect("supervisor:campaign", campaign_id=campaign.pk)
    return render(request, "supervisor/campaign_form.html", {"form": form, "campaign": None})


@supervisor_required
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    form = CampaignForm(request.POST or None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        form.save_campaign()
        messages.success(request, "Campaign saved.")
        return redirect("supervisor:campaign", campaign_id=campaign.pk)
    return render(request, "supervisor/campaign_form.html", {"form": form, "campaign": campaign})


@supervisor_required
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    context = {
        "campaign": campaign,
        "counts": selectors.campaign_counts(campaign),
        "live_calls": calls_on_desks(campaign=campaign),
        "uploads": selectors.uploads_for(campaign),
        "upload_form": UploadForm(),
        "export_form": ExportFilterForm(campaign=campaign),
        "intake_url": _intake_url(request, campaign),
        # Platforms whose leads come from their own campaigns take no sheet (the adapter says).
        "takes_sheets": not campaign.account.provider_class.offers_leads,
    }
    return render(request, "supervisor/campaign_detail.html", context)


@require_POST
@supervisor_required
def campaign_status(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        services.campaign_set_status(
            campaign=campaign, status=request.POST.get("status", ""), by=request.user
        )
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    # Back where the button was (the dashboard or the campaign): a path on this site, never
    # another site, and never read as a view name (redirect("0") would look one up: a 500).
    back = request.POST.get("next", "")
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("supervisor:campaign", args=[campaign.pk])
    if request.htmx:  # the confirmed button (hx-confirm): the browser goes back itself
        return HttpResponseClientRedirect(back)
    return HttpResponseRedirect(back)


@require_GET
@supervisor_required
def campaign_token(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The intake token, shown only when a supervisor asks (Reveal): it is not in the page."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return _token_answer(request, campaign)


@require_POST
@supervisor_required
def campaign_token_rotate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = services.campaign_rotate_token(
        campaign=selectors.campaign_get(campaign_id=campaign_id), by=request.user
    )
    if not request.htmx:
        messages.success(request, "A new intake token is in place; the old one no longer works.")
        return redirect("supervisor:campaign", campaign_id=campaign.pk)
    return _token_answer(request, campaign, rotated=True)


def _token_answer(request: HttpRequest, campaign: Campaign, *, rotated: bool = False) -> HttpResponse:
    context = {"campaign": campaign, "intake_url": _intake_url(request, campaign), "revealed": True}
    response = render(request, "supervisor/campaign_detail.html#intake", {**context, "rotated": rotated})
    response["Cache-Control"] = "no-store"
    return response


def _intake_url(request: HttpRequest, campaign: Campaign) -> str:
    return request.build_absolute_uri(reverse("supervisor:intake", args=[campaign.pk]))


@require_POST
@supervisor_required
def campaign_sync(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        services.campaign_sync_start(campaign=campaign)
        messages.success(request, f"Push to {campaign.account.get_platform_display()} queued.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("supervisor:campaign", campaign_id=campaign.pk)


@require_GET
@supervisor_required
def campaign_export(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The results CSV, filtered by the GET parameters of ``ExportFilterForm`` (400 in words
    when one is not valid)."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    form = ExportFilterForm(request.GET, campaign=campaign)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(
            f"The export filter is not valid ({problems}).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    response = StreamingHttpResponse(
        export.rows(campaign, form.export_filter()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
    return response


# -- uploads ---------------------------------------------------------------------------------------------


def _file_form(request: HttpRequest, form_class: type[forms.Form], *, missing: str) -> dict:
    """The cleaned data of a form with a file, or ``ServiceError``: the size limit's refusal
    (``upload_handlers`` skipped the file while the body was read), else ``missing``."""
    form = form_class(request.POST, request.FILES)
    if refused := upload_handlers.refusal(request):  # known once request.FILES is read
        raise services.ServiceError(refused)
    if not form.is_valid():
        raise services.ServiceError(missing)
    return form.cleaned_data


@require_POST
@supervisor_required
def upload_create(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    try:
        data = _file_form(request, UploadForm, missing="Choose a sheet to upload.")
        upload = services.upload_create(campaign=campaign, file=data["sheet"], user=request.user)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("supervisor:campaign", campaign_id=campaign.pk)
    return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)


# -- resumable uploads (static/js/supervisor.js sends a sheet in pieces; campaigns.resumable) -------


def _resumable_answer(work) -> JsonResponse:
    """``work()``'s dict as JSON, or its refusal in words with its status."""
    try:
        return JsonResponse({"error": False, **work()})
    except resumable.Refused as exc:
        return _json_error(exc.status, str(exc), **exc.extra)
    except services.ServiceError as exc:
        return _json_error(400, str(exc))


@require_POST
@supervisor_required
def upload_resumable_start(request: HttpRequest, campaign_id: int) -> JsonResponse:
    """Start a resumable upload: ``{"name": ..., "size": <bytes>}``; answers its id and piece size."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)

    def work() -> dict:
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise resumable.Refused('Send {"name": ..., "size": ...} as JSON.')
        row = resumable.start(
            campaign=campaign, user=request.user, name=body.get("name"), size=body.get("size")
        )
        return resumable.status(row)

    return _resumable_answer(work)


@supervisor_required
def upload_resumable(request: HttpRequest, campaign_id: int, resumable_id) -> JsonResponse:
    """GET: what the server holds (to resume). PUT ``?offset=N``: the next piece, raw bytes (the
    CSRF middleware checks a PUT as it does a POST: the page's token in ``X-CSRFToken``)."""
    if request.method not in ("GET", "PUT"):
        answer = _json_error(405, "Use GET to ask where to resume, PUT to send a piece.")
        answer["Allow"] = "GET, PUT"
        return answer
    campaign = selectors.campaign_get(campaign_id=campaign_id)

    def work() -> dict:
        row = resumable.get(campaign=campaign, user=request.user, upload_id=resumable_id)
        if request.method == "GET":
            return resumable.status(row)
        offset = request.GET.get("offset", "")
        declared = request.META.get("CONTENT_LENGTH") or "0"
        resumable.check_offset(row, offset, int(declared) if declared.isdigit() else 0)
        try:
            data = request.body
        except RequestDataTooBig as exc:
            raise resumable.Refused(
                f"A piece may be {sheets.human_size(settings.UPLOAD_CHUNK_BYTES)} at most.", status=413
            ) from exc
        start = resumable.check_offset(row, offset, len(data))
        return resumable.status(resumable.append(row, start, data))

    return _resumable_answer(work)


@require_POST
@supervisor_required
def upload_resumable_finish(request: HttpRequest, campaign_id: int, resumable_id) -> JsonResponse:
    """The whole file is here: it becomes a sheet upload (every check of a form upload), and
    the answer says where its mapping page is."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)

    def work() -> dict:
        row = resumable.get(campaign=campaign, user=request.user, upload_id=resumable_id)
        upload = resumable.finish(row, user=request.user)
        return {"redirect": reverse("supervisor:upload", args=[campaign.pk, upload.pk])}

    return _resumable_answer(work)


def _upload_context(upload: SheetUpload) -> dict:
    mapping = upload.mapping or {}
    preview = services.upload_preview(upload)
    has_header = mapping.get("has_header", True)
    header = preview[0] if preview and has_header else []
    body = preview[1:] if has_header else preview
    width = max((len(r) for r in preview), default=0)
    columns = list(mapping.get("columns") or [])
    columns += [sheets.IGNORE] * (width - len(columns))
    return {
        "upload": upload,
        "campaign": upload.campaign,
        "header": header,
        "preview_rows": body,
        "columns": [
            {
                "index": i,
                "header": header[i] if i < len(header) else f"Column {i + 1}",
                "target": columns[i],
                "choices": services.mapping_choices(upload.campaign, header[i] if i < len(header) else ""),
            }
            for i in range(width)
        ],
        "locked": upload.status
        in (
            SheetUpload.Status.IMPORTING,
            SheetUpload.Status.DONE,
            SheetUpload.Status.UNDOING,
            SheetUpload.Status.UNDONE,
        ),
        "modes": SheetUpload.Mode.choices,
        "workbook": mapping.get("workbook") or {},
    }


@supervisor_required
def upload_detail(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    return render(request, "supervisor/upload.html", _upload_context(upload))


@require_GET
@supervisor_required
def upload_progress(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    """The progress partial, re-read by the page after every WebSocket (re)connect."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    return render(request, "supervisor/upload.html#progress", {"upload": upload})


@require_POST
@supervisor_required
def upload_mapping(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    """Save the mapping and start the dry run."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    width = request.POST.get("width", "0") or "0"
    if not width.isdigit():
        messages.error(request, "The mapping form was incomplete; map the columns again.")
        return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)
    columns = [request.POST.get(f"col_{i}", "") for i in range(min(int(width), settings.SHEET_MAX_COLUMNS))]
    try:
        upload = services.upload_set_mapping(
            upload=upload,
            columns=columns,
            has_header=request.POST.get("has_header") == "on",
            mode=request.POST.get("mode") or SheetUpload.Mode.ADD,
        )
        services.upload_start_dry_run(upload=upload)
    except (services.ServiceError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)


@require_POST
@supervisor_required
def upload_sheet(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    """Read another sheet of a workbook of several (the mapping is proposed again for it)."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    try:
        before = (upload.mapping or {}).get("workbook", {}).get("sheet")
        upload = services.upload_choose_sheet(
            upload=upload, sheet=request.POST.get("sheet", "").replace("\x00", "")
        )
        workbook = upload.mapping["workbook"]
        if workbook["sheet"] != before:
            messages.success(
                request, f"Reading the sheet “{workbook['sheet']}”: map its columns, then check it (dry run)."
            )
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)


@require_POST
@supervisor_required
def upload_import(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    """Start the import of the report the page showed: its dry run's number comes with the form."""
    posted = request.POST.get("run", "")
    run = int(posted) if posted.isdigit() and len(posted) < 10 else -1  # none or garbage: no report's

    def start(*, upload: SheetUpload) -> SheetUpload:
        return services.upload_start_import(upload=upload, run=run)

    return _upload_start(request, campaign_id, upload_id, start)


def _upload_start(request: HttpRequest, campaign_id: int, upload_id: int, start) -> HttpResponse:
    """Start a pass on the upload (``start(upload=...)``, a service that queues a task): the
    progress partial for htmx, else the page; a refusal in words either way."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    refusal = ""
    try:
        upload = start(upload=upload)
    except services.ServiceError as exc:
        refusal = str(exc)
        upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)  # as it is now
    if request.htmx:  # the panel is swapped in place: the refusal is said in it
        return render(request, "supervisor/upload.html#progress", {"upload": upload, "refusal": refusal})
    if refusal:
        messages.error(request, refusal)
    return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)


@require_POST
@supervisor_required
def upload_cancel(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = services.upload_cancel(upload=selectors.upload_get(campaign=campaign, upload_id=upload_id))
    if request.htmx:
        return render(request, "supervisor/upload.html#progress", {"upload": upload})
    return redirect("supervisor:upload", campaign_id=campaign.pk, upload_id=upload.pk)


@require_POST
@supervisor_required
def upload_undo(request: HttpRequest, campaign_id: int, upload_id: int) -> HttpResponse:
    """Start undoing a finished import (the page asks first)."""
    return _upload_start(request, campaign_id, upload_id, services.upload_start_undo)


@require_GET
@supervisor_required
def upload_issues(request: HttpRequest, campaign_id: int, upload_id: int) -> FileResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    upload = selectors.upload_get(campaign=campaign, upload_id=upload_id)
    path = importer.report_path(upload)
    if not Path(path).exists():
        raise Http404("No report yet: run the dry run first.")
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=f"{Path(upload.original_name).stem}-issues.csv",
        content_type="text/csv",
    )


# -- do-not-call ---------------------------------------------------------------------------------------


@supervisor_required
def dnc(request: HttpRequest) -> HttpResponse:
    form = DncAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            row = services.dnc_add(
                number=form.cleaned_data["number"], reason=form.cleaned_data["reason"], added_by=request.user
            )
            messages.success(request, f"{row.number} is on the do-not-call list.")
            return redirect("supervisor:dnc")
        except services.ServiceError as exc:
            form.add_error("number", str(exc))
    query = request.GET.get("q", "").strip()
    rows = selectors.dnc_list(query=query)
    return render(
        request,
        "supervisor/dnc.html",
        {"form": form, "upload_form": DncUploadForm(), "rows": rows[:500], "total": rows.count(), "q": query},
    )


@require_POST
@supervisor_required
def dnc_upload(request: HttpRequest) -> HttpResponse:
    try:
        data = _file_form(request, DncUploadForm, missing="Choose a file of numbers.")
        result = services.dnc_import(file=data["sheet"], reason=data["reason"], added_by=request.user)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("supervisor:dnc")
    messages.success(
        request,
        f"Added {result.added}; {result.already} already listed; {len(result.invalid)} not numbers.",
    )
    for line, value, reason in result.invalid[:20]:
        messages.warning(request, f"Line {line}: {value!r} {reason}.")
    return redirect("supervisor:dnc")


@require_POST
@supervisor_required
def dnc_remove(request: HttpRequest) -> HttpResponse:
    services.dnc_remove(number=request.POST.get("number", ""))
    return redirect("supervisor:dnc")


# -- intake API -------------------------------------------------------------------------------------------


def _json_type(content_type: str) -> bool:
    """JSON by its media type: ``application/json`` or a ``+json`` type, and ``text/plain`` (what
    a CRM's plain HTTP client sends when it does not set one)."""
    return content_type in ("application/json", "text/plain") or content_type.endswith("+json")


def _json_error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": True, "message": message, **extra}, status=status)


@csrf_exempt
def intake(request: HttpRequest, campaign_id: int) -> JsonResponse:
    """``POST /supervisor/api/campaigns/<id>/leads`` with Ryng's Append Campaign JSON body and the
    campaign's intake token, as ``Authorization: Bearer <token>`` or as Ryng's own
    ``x-access-token: <token>`` (a CRM already talking to Ryng sends that). 200 with counts; 400
    with per-row errors; 401 for a missing or wrong token; 404 for an unknown campaign; 405 for
    another method; 413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``; 415 for a body sent as a
    form or a file (any media type but JSON's or plain text). Every answer is JSON."""
    if request.method != "POST":
        answer = _json_error(405, "Use POST with an Append Campaign JSON body.")
        answer["Allow"] = "POST"
        return answer
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        token = request.headers.get("X-Access-Token", "")
    if campaign is None:
        return _json_error(404, "Unknown campaign.")
    if (
        not token.strip()
        # As bytes: compare_digest refuses a str with non-ASCII characters (it raised: a 500).
        or not hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), campaign.intake_token.encode()
        )
    ):
        return _json_error(
            401, "Missing or wrong token (Authorization: Bearer <intake token>, or x-access-token)."
        )
    if request.content_type and not _json_type(request.content_type):
        # A form or a file is not what the API takes (a sheet goes through the upload page).
        return _json_error(
            415,
            f"Send the body as application/json, not {request.content_type[:80]}.",
            expected="application/json",
        )
    try:
        body = json.loads(request.body or b"")
    except RequestDataTooBig:
        limit = sheets.human_size(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return _json_error(413, f"The body is over {limit}, the limit.")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _json_error(400, "The body is not JSON.")
    try:
        result = services.intake_append(campaign=campaign, body=body)
    except services.IntakeError as exc:
        return _json_error(400, exc.message, errors=exc.errors)
    return JsonResponse(
        {
            "error": False,
            "message": f"Appended {result.appended} leads.",
            "data": {
                "received": result.received,
                "appended": result.appended,
                "duplicates": result.duplicates,
                "dnc": result.dnc,
            },
        }
    )


@require_GET
@supervisor_required
def campaign_breakdown(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Why leads are not dialable now (``campaigns.blockers``): a fragment of the campaign page."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    counted = services.campaign_breakdown_for_page(campaign, again="again" in request.GET)
    context = {"campaign": campaign, "breakdown": counted.breakdown, "counted": counted}
    return render(request, "supervisor/_breakdown.html", context)
