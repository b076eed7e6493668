"""Excel and LibreOffice workbooks through the supervisor's upload page, as a supervisor brings
them: real files written by openpyxl (.xlsx), xlwt (.xls) and odfpy (.ods), uploaded with the
test client, dry-run and imported; the leads must be exactly those of the same sheet as CSV.
Hostile workbooks are refused in words with nothing left behind (as in test_upload_limits)."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlwt
from django.test import Client
from django.urls import reverse
from msoffcrypto.format.ooxml import OOXMLFile
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

from campaigns import services
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import run_dry, run_import, sheet_bytes
from tests.campaigns.test_upload_limits import assert_refused, post_sheet, stored_files

pytestmark = pytest.mark.django_db

SINCE = datetime.date(2024, 3, 5)
# Phone numbers as Excel keeps numbers typed into a cell: floats (2125550100.0).
ROWS = [
    ["Name", "Phone", "Since", "Called at", "VIP", "Score"],
    ["Zoë Ångström", 2125550100.0, SINCE, datetime.datetime(2024, 3, 5, 14, 30), True, 42.0],
    ["José Núñez", 4155552671.0, datetime.date(1999, 12, 31), None, False, 0.5],
    ["Maëlle O'Brien", "(646) 555-0199", None, None, None, None],
]
LEADS = {
    "+12125550100": (
        "Zoë Ångström",
        "2125550100",
        {"Since": "2024-03-05", "Called at": "2024-03-05 14:30:00", "VIP": "TRUE", "Score": "42"},
    ),
    "+14155552671": ("José Núñez", "4155552671", {"Since": "1999-12-31", "VIP": "FALSE", "Score": "0.5"}),
    "+16465550199": ("Maëlle O'Brien", "(646) 555-0199", {}),
}


@pytest.fixture
def campaign(campaign):
    """The import test campaign, with the sheet's custom fields."""
    campaign.custom_field_names = ["Since", "Called at", "VIP", "Score"]
    campaign.save(update_fields=["custom_field_names"])
    return campaign


def xlsx(rows=ROWS, *, sheets: dict[str, list] | None = None) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, content in (sheets or {"Leads": rows}).items():
        sheet = book.create_sheet(title)
        for row in content:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls(rows=ROWS) -> bytes:
    book = xlwt.Workbook()
    sheet = book.add_sheet("Leads")
    date, stamp = xlwt.easyxf(num_format_str="YYYY-MM-DD"), xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            style = stamp if isinstance(value, datetime.datetime) else date
            sheet.write(r, c, value, style if isinstance(value, datetime.date) else xlwt.Style.default_style)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ods(rows=ROWS) -> bytes:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="Leads")
    for row in rows:
        line = TableRow()
        for value in row:
            if value is None:
                cell = TableCell()
            elif isinstance(value, bool):
                cell = TableCell(valuetype="boolean", booleanvalue=str(value).lower())
            elif isinstance(value, datetime.datetime):
                cell = TableCell(valuetype="date", datevalue=value.isoformat(timespec="seconds"))
            elif isinstance(value, datetime.date):
                cell = TableCell(valuetype="date", datevalue=value.isoformat())
            elif isinstance(value, float):
                cell = TableCell(valuetype="float", value=repr(value))
            else:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=value))
            line.addElement(cell)
        table.addElement(line)
    doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def imported() -> dict[str, tuple[str, str, dict]]:
    return {lead.number: (lead.name, lead.raw_number, lead.custom_fields) for lead in Lead.objects.all()}


def upload_page(client, campaign, data: bytes, name: str) -> SheetUpload:
    answer = post_sheet(client, campaign, data, name)
    upload = SheetUpload.objects.get()
    assert answer.redirect_chain[-1][0] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    return upload


@pytest.mark.parametrize(("make", "name"), [(xlsx, "leads.xlsx"), (xls, "leads.xls"), (ods, "leads.ods")])
def test_a_workbook_imports_the_leads_its_cells_show(supervisor_client, campaign, make, name):
    upload = upload_page(supervisor_client, campaign, make(), name)
    page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, upload.pk])).content.decode()
    assert "Zoë Ångström" in page and "2125550100" in page and "2125550100.0" not in page
    assert upload.original_name == name
    assert upload.mapping["workbook"]["sheet"] == "Leads" and not upload.mapping["workbook"]["pending"]
    # The sheet is the CSV now; the workbook is not kept.
    assert [p.suffix for p in stored_files()] == [".csv"]
    assert (upload.encoding, upload.delimiter) == ("utf-8", ",")
    upload = run_import(upload)
    assert (upload.status, upload.imported_rows) == (SheetUpload.Status.DONE, 3)
    assert imported() == LEADS


def test_the_same_sheet_as_csv_gives_the_same_leads(supervisor_client, campaign):
    text_rows = [
        ["Name", "Phone", "Since", "Called at", "VIP", "Score"],
        ["Zoë Ångström", "2125550100", "2024-03-05", "2024-03-05 14:30:00", "TRUE", "42"],
        ["José Núñez", "4155552671", "1999-12-31", "", "FALSE", "0.5"],
        ["Maëlle O'Brien", "(646) 555-0199", "", "", "", ""],
    ]
    run_import(upload_page(supervisor_client, campaign, sheet_bytes(text_rows), "leads.csv"))
    assert imported() == LEADS


def test_a_workbook_named_csv_is_read_as_the_workbook_it_is(supervisor_client, campaign):
    upload = upload_page(supervisor_client, campaign, xlsx(), "leads.csv")
    assert upload.mapping["workbook"]["format"] == "xlsx"
    run_import(upload)
    assert imported() == LEADS


def test_big_numbers_and_fractions_print_as_the_cell_shows_them(supervisor_client, campaign):
    rows = [["Phone", "Account", "Rate", "Tiny"], [2125550100, 123456789012345.0, 1234567.25, 1.5e-7]]
    upload = run_dry(upload_page(supervisor_client, campaign, xlsx(rows), "leads.xlsx"))
    assert Path(upload.file.path).read_bytes() == (
        b"Phone,Account,Rate,Tiny\r\n2125550100,123456789012345,1234567.25,0.00000015\r\n"
    )


def test_the_first_sheet_with_data_is_the_one_read(supervisor_client, campaign):
    data = xlsx(sheets={"Notes": [], "Leads": ROWS, "Later": [["Name", "Phone"], ["Nope", 3125550100]]})
    upload = upload_page(supervisor_client, campaign, data, "leads.xlsx")
    assert upload.mapping["workbook"]["sheet"] == "Leads"
    run_import(upload)
    assert imported() == LEADS


LATER = [["Name", "Phone", "Since"], ["Nope", 3125550100.0, SINCE], ["Pia", "3125550101", None]]
MANY = {"Notes": [], "Leads": ROWS, "Later": LATER, "Wide": [["Phone"] + [f"c{i}" for i in range(250)]]}


def sheet_files() -> list[str]:
    """The suffixes of the stored sheets and workbooks (dry-run issue reports aside)."""
    return sorted(p.suffix for p in stored_files() if p.parent.name != "reports")


def page_of(client, upload) -> str:
    answer = client.get(reverse("supervisor:upload", args=[upload.campaign_id, upload.pk]))
    assert answer.status_code == 200
    return answer.content.decode()


def choose(client, upload, sheet: str) -> str:
    answer = client.post(
        reverse("supervisor:upload_sheet", args=[upload.campaign_id, upload.pk]),
        {"sheet": sheet},
        follow=True,
    )
    assert answer.status_code == 200
    assert answer.redirect_chain[-1][0] == reverse("supervisor:upload", args=[upload.campaign_id, upload.pk])
    return answer.content.decode()


def test_a_workbook_of_several_sheets_lists_them_and_the_supervisor_chooses(supervisor_client, campaign):
    upload = upload_page(supervisor_client, campaign, xlsx(sheets=MANY), "book.xlsx")
    page = page_of(supervisor_client, upload)
    # Each visible sheet with its rows (read: the workbook is small); the first with data chosen.
    assert "This workbook has 4 sheets" in page
    assert '<option value="Notes">Notes (empty)</option>' in page
    assert '<option value="Leads" selected>Leads (4 rows)</option>' in page
    assert '<option value="Later">Later (3 rows)</option>' in page
    assert 'id="sheet-current">Leads</b>' in page and "Zoë Ångström" in page
    # The workbook is kept beside the sheet's CSV while another sheet may be chosen.
    assert sorted(p.suffix for p in stored_files()) == [".csv", ".xlsx"]
    upload = run_dry(upload)
    assert upload.valid_rows == 3
    # Another sheet: its rows and a mapping proposed for its header; the old counts are gone.
    page = choose(supervisor_client, upload, "Later")
    assert "Reading the sheet “Later”: map its columns, then check it (dry run)." in page
    assert '<option value="Later" selected>' in page and "Nope" in page and "Zoë Ångström" not in page
    assert 'id="dry-run-report"' not in page and 'id="import-button"' not in page
    upload = SheetUpload.objects.get()
    assert upload.status == SheetUpload.Status.UPLOADED and upload.report == {}
    assert upload.mapping["headers"] == ["Name", "Phone", "Since"]
    assert upload.mapping["workbook"]["sheet"] == "Later"
    assert sorted(p.suffix for p in stored_files()) == [".csv", ".xlsx"]  # the old CSV went
    # The choice holds through the dry run and the import.
    upload = run_dry(upload)
    assert (upload.total_rows, upload.valid_rows) == (2, 2)
    upload = run_import(upload)
    assert imported() == {
        "+13125550100": ("Nope", "3125550100", {"Since": "2024-03-05"}),
        "+13125550101": ("Pia", "3125550101", {}),
    }
    # Imported: the sheet is settled and the workbook is no longer kept.
    assert sheet_files() == [".csv"]
    page = choose(supervisor_client, upload, "Leads")
    assert "This sheet is already imported; upload the workbook again to import another sheet." in page
    assert 'id="sheet-button"' not in page


def test_a_sheet_that_cannot_be_read_leaves_the_upload_on_its_sheet(
    supervisor_client, agent_client, campaign
):
    upload = upload_page(supervisor_client, campaign, xlsx(sheets=MANY), "book.xlsx")
    before = (upload.file.name, upload.mapping)
    for sheet, words in (
        ("Notes", "The sheet “Notes” is empty: choose the sheet that holds the leads."),
        ("Wide", "The sheet “Wide”: This sheet has 251 columns; the limit is 200."),
        ("Nowhere", "This workbook has no sheet by that name: choose one from the list."),
    ):
        assert words in choose(supervisor_client, upload, sheet)
        upload.refresh_from_db()
        assert (upload.file.name, upload.mapping) == before
    assert sorted(p.suffix for p in stored_files()) == [".csv", ".xlsx"]
    # Agents and anonymous visitors are refused.
    url = reverse("supervisor:upload_sheet", args=[campaign.pk, upload.pk])
    assert agent_client.post(url, {"sheet": "Later"}).status_code == 403
    anonymous = Client().post(url, {"sheet": "Later"})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    upload.refresh_from_db()
    assert upload.mapping["workbook"]["sheet"] == "Leads"


def test_choosing_a_sheet_during_a_dry_run_drops_that_run(supervisor_client, campaign, settings):
    settings.WORKBOOK_INLINE_BYTES = 0  # the running dry run would convert the old sheet first
    upload = upload_page(supervisor_client, campaign, xlsx(sheets=MANY), "book.xlsx")
    services.upload_start_dry_run(upload=upload)  # queued for a worker: the Leads sheet's run
    choose(supervisor_client, upload, "Later")
    assert services.upload_dry_run_run(upload_id=upload.pk) is None  # superseded, counts dropped
    upload = SheetUpload.objects.get()
    assert (upload.status, upload.mapping["workbook"]["sheet"]) == (SheetUpload.Status.UPLOADED, "Later")
    upload = run_import(upload)
    assert set(imported()) == {"+13125550100", "+13125550101"}


def test_a_workbook_of_one_sheet_offers_no_choice(supervisor_client, campaign):
    upload = upload_page(supervisor_client, campaign, xlsx(), "leads.xlsx")
    assert 'id="sheet-choice"' not in page_of(supervisor_client, upload)
    assert "This file has one sheet only: there is no other to choose." in choose(
        supervisor_client, upload, "Leads"
    )


def test_a_big_workbook_converts_the_chosen_sheet_when_its_dry_run_starts(
    supervisor_client, campaign, settings
):
    settings.WORKBOOK_INLINE_BYTES = 0  # every workbook is "big": only the chosen sheet is read
    other = [["Name", "Phone"]] + [[f"Ola {i}", 3125550000.0 + i] for i in range(250)]
    data = xlsx(sheets={"Leads": ROWS, "Other": other, "R&D": LATER, "Blank": []})
    upload = upload_page(supervisor_client, campaign, data, "big.xlsx")
    page = page_of(supervisor_client, upload)
    # A sheet not read shows the rows its .xlsx declares (reading it would cost the whole sheet).
    assert '<option value="Leads" selected>Leads (4 rows)</option>' in page
    assert '<option value="Other">Other (about 251 rows)</option>' in page
    assert '<option value="R&amp;D">R&amp;D (about 3 rows)</option>' in page
    assert '<option value="Blank">Blank (empty)</option>' in page
    page = choose(supervisor_client, upload, "Other")
    assert '<option value="Other" selected>Other (251 rows)</option>' in page
    upload = SheetUpload.objects.get()
    assert upload.mapping["workbook"]["pending"]
    assert len(Path(upload.file.path).read_text().splitlines()) == 200  # the head, for the mapping
    upload = run_dry(upload)
    assert (upload.total_rows, upload.valid_rows) == (250, 250)
    assert upload.mapping["workbook"]["sheet"] == "Other" and not upload.mapping["workbook"]["pending"]
    run_import(upload)
    assert Lead.objects.count() == 250 and Lead.objects.get(number="+13125550249").name == "Ola 249"
    assert sheet_files() == [".csv"]


def test_a_big_workbook_is_converted_when_its_dry_run_starts(supervisor_client, campaign, settings):
    settings.WORKBOOK_INLINE_BYTES = 0  # every workbook is "big"
    rows = [["Name", "Phone"]] + [[f"Zoë {i}", 2125550000.0 + i] for i in range(300)]
    upload = upload_page(supervisor_client, campaign, xlsx(rows), "big.xlsx")
    workbook = upload.mapping["workbook"]
    assert workbook["pending"] and workbook["rows"] == 301
    # Until the dry run, the CSV holds the first 200 records (the mapping page's), the workbook waits.
    assert len(Path(upload.file.path).read_text().splitlines()) == 200
    assert sorted(p.suffix for p in stored_files()) == [".csv", ".xlsx"]
    page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, upload.pk])).content.decode()
    assert "Zoë 0" in page
    upload = run_dry(upload)
    assert (upload.status, upload.total_rows, upload.valid_rows) == (SheetUpload.Status.VALIDATED, 300, 300)
    assert ".xlsx" not in {p.suffix for p in stored_files()}  # the workbook is gone once converted
    assert not SheetUpload.objects.get().mapping["workbook"]["pending"]
    run_import(upload)
    assert Lead.objects.count() == 300
    assert Lead.objects.get(number="+12125550299").name == "Zoë 299"


def _encrypted() -> bytes:
    plain = io.BytesIO(xlsx())
    out = io.BytesIO()
    OOXMLFile(plain).encrypt("secret", out)
    return out.getvalue()


def _one_stray_cell() -> bytes:
    book = openpyxl.Workbook()
    book.active["A1"] = "Phone"
    book.active["XFD1048576"] = "x"  # a 1,048,576 x 16,384 grid for a reader that fills it
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HOSTILE = {
    "encrypted xlsx": (_encrypted, "This workbook is protected with a password"),
    "only empty sheets": (
        lambda: xlsx(sheets={"Sheet1": [], "Sheet2": []}),
        "This workbook has no sheet with data in it: sheets “Sheet1”, “Sheet2” are empty.",
    ),
    "truncated xlsx": (lambda: xlsx()[:3000], "This workbook is damaged and cannot be read"),
    "xlsx without its sheet": (
        lambda: _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
        "This workbook is damaged and cannot be read",
    ),
    "too wide": (
        lambda: xlsx([["Phone"] + [f"c{i}" for i in range(250)], [2125550100.0]]),
        "This sheet has 251 columns; the limit is 200.",
    ),
    # Excel's cells end at 32,767 characters (calamine cuts an .xlsx cell there); an .ods has no such end.
    "a cell over 1 MB": (
        lambda: ods([["Name", "Phone"], ["x" * (1024 * 1024 + 1), 2125550100.0]]),
        "Line 2 has a cell over 1 MB",
    ),
    "a grid too big for memory": (_one_stray_cell, "This workbook needs more than"),
}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_workbooks_are_refused_in_words(supervisor_client, campaign, caplog, kind):
    make, message = HOSTILE[kind]
    assert_refused(post_sheet(supervisor_client, campaign, make(), "leads.xlsx"), message, caplog)
