"""Sheet import benchmark: the real import path against a raw ``COPY`` of the same rows.

    python bench/import_bench.py [--rows 1000000] [--database-url postgres://...] [--workers N]

1. Generates a sheet of ``--rows`` leads (name, phone, city, plan): half national US numbers
   typed as ``(212) 555-0134``, half E.164, 1% invalid, every number distinct.
2. Creates the database if needed and migrates it.
3. Runs the dry run and then the import through ``campaigns.services`` (what the Celery tasks run),
   each in a fresh child process, sampling the memory of that process *and all of its
   descendants* (the dry run's second checking process) every 50 ms from outside: summed RSS
   (counts pages a forked child shares with its parent twice) and summed PSS (counts them once).
   On PostgreSQL the dry run stages the checked rows (for this new campaign: as its partition
   to be, indexed) and the import inserts or attaches them without checking again, so
   "validated and imported" is the sum of the two.
4. Runs a raw ``COPY ... FROM STDIN (FORMAT csv)`` of the same file into a bare text table: the
   floor any import on this database can reach.
5. Prints rows/s, peak memory and the ratio import time / COPY time.
6. With ``--xlsx`` (``make bench`` sets it): writes the same rows as an ``.xlsx`` workbook
   (openpyxl, write-only; not timed) and runs its upload, dry run (which converts the workbook
   first, python-calamine) and import into a second campaign: the workbook's figure next to the
   CSV's, as a ratio.
7. With ``--import-export N`` (``make bench``: 50,000; django-import-export is a dev requirement): the first
   ``N`` rows of the same sheet into two more new campaigns, once our way (upload, dry run,
   import) and once with django-import-export as its admin does it (a dry run, then the import)
   through a ``ModelResource`` over ``Lead`` given the same work: each number normalized with our
   own ``campaigns.phone.normalize`` (the invalid skipped), the city and plan kept as custom
   fields, a number already in the campaign skipped, its bulk mode in batches of 1,000. Both
   must import the same leads; the ratio is its time over ours.

Figures are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchdb import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agentdesk_bench"


# -- memory sampling of a process tree ------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages (a forked child's copy-on-write pages) split between
    the processes sharing them, so a process tree's sum counts each page once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak summed RSS and PSS of a process and its descendants, sampled every 50 ms. RSS sums
    count a forked child's shared pages twice; PSS sums count them once."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.peak_root_kb = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            tree = _children_map()
            pids, stack = [], [self.pid]
            while stack:
                pid = stack.pop()
                pids.append(pid)
                stack.extend(tree.get(pid, []))
            total = sum(_rss_kb(p) for p in pids)
            self.peak_kb = max(self.peak_kb, total)
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in pids))
            self.peak_root_kb = max(self.peak_root_kb, _rss_kb(self.pid))
            self.stop_event.wait(0.05)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()


# -- data --------------------------------------------------------------------------------------------


def _valid_area_codes() -> list[str]:
    import phonenumbers

    codes = []
    for npa in range(200, 1000):
        number = phonenumbers.parse(f"+1{npa}5550134", None)
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US":
            codes.append(str(npa))
    return codes


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write the sheet; return how many rows were made invalid on purpose."""
    rng = random.Random(seed)
    codes = _valid_area_codes()
    cities = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview"]
    plans = ["Basic", "Plus", "Pro", ""]
    invalid = 0
    used: set[int] = set()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Phone", "City", "Plan"])
        for i in range(rows):
            if i % 100 == 42:
                invalid += 1
                number = rng.choice(["12345", "+1 555 01", "not a number", "+99912345678", "(212) 555-01"])
            else:
                while True:
                    npa = rng.choice(codes)
                    nxx = rng.randint(200, 999)
                    line = rng.randint(0, 9999)
                    key = int(f"{npa}{nxx}{line:04d}")
                    if key not in used:
                        used.add(key)
                        break
                number = f"+1{npa}{nxx}{line:04d}" if i % 2 else f"({npa}) {nxx}-{line:04d}"
            writer.writerow([f"Lead {i}", number, rng.choice(cities), rng.choice(plans)])
    return invalid


def write_xlsx(csv_path: Path, xlsx_path: Path) -> None:
    """The CSV's rows as one sheet of an ``.xlsx`` (openpyxl's write-only mode streams them)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Leads")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            sheet.append(row)
    book.save(xlsx_path)


# -- database ----------------------------------------------------------------------------------------


def settle_database(url: str) -> None:
    """Start every run from the same state: the previous run's million deleted leads vacuumed
    away and no WAL of the setup waiting for a checkpoint inside the measured window. (Without
    this, a run right after another measured up to 5 s slower; BENCHMARKS.md.)"""
    import psycopg

    print("Settling the database (VACUUM campaigns_lead, CHECKPOINT) ...")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) campaigns_lead")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            print("  (no CHECKPOINT: needs a superuser or pg_checkpoint)")


def raw_copy(url: str, path: Path) -> float:
    """COPY the sheet as it is into a bare table: no validation, no indexes, one statement."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_copy")
        conn.execute("CREATE UNLOGGED TABLE bench_raw_copy (name text, phone text, city text, plan text)")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY bench_raw_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(path, "rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM bench_raw_copy").fetchone()[0]
        conn.execute("DROP TABLE bench_raw_copy")
    print(f"  raw COPY: {count} rows")
    return elapsed


# -- the child: one phase of the real import path -------------------------------------------------------


def child(phase: str, upload_id: int) -> None:
    import django

    django.setup()
    from campaigns import services
    from campaigns.models import SheetUpload

    SheetUpload.objects.filter(pk=upload_id).update(
        status=SheetUpload.Status.VALIDATING if phase == "dry" else SheetUpload.Status.IMPORTING
    )
    started = time.perf_counter()
    if phase == "dry":
        upload = services.upload_dry_run_run(upload_id=upload_id)
    else:
        upload = services.upload_import_run(upload_id=upload_id)
    elapsed = time.perf_counter() - started
    assert upload is not None
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "status": upload.status,
                "error": upload.error,
                "total": upload.total_rows,
                "valid": upload.valid_rows,
                "invalid": upload.invalid_rows,
                "imported": upload.imported_rows,
            }
        )
    )


def run_phase(phase: str, upload_id: int, env: dict[str, str]) -> tuple[dict, float, int, int, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", phase, "--upload-id", str(upload_id)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    sampler.stop()
    if proc.returncode:
        raise SystemExit(f"{phase} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return result, wall, sampler.peak_kb, sampler.peak_root_kb, sampler.peak_pss_kb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--workers", type=int, default=None, help="row-check processes (default: CPUs, max 4)"
    )
    parser.add_argument("--xlsx", action="store_true", help="also import the same rows as an .xlsx workbook")
    parser.add_argument(
        "--import-export",
        type=int,
        default=0,
        metavar="N",
        help="also import N rows with django-import-export",
    )
    parser.add_argument("--child", choices=["dry", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--upload-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")
    if args.child:
        child(args.child, args.upload_id)
        return

    url = args.database_url
    if not url.startswith("postgres"):
        raise SystemExit("The benchmark measures the PostgreSQL path: pass a postgres:// --database-url.")
    ensure_database(url)
    work = Path(tempfile.mkdtemp(prefix="agentdesk-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AGENTDESK_VAR_DIR": str(work / "var"),
        "LOG_LEVEL": "ERROR",  # progress pushes to an absent Redis only warn
        # No Redis is needed: progress pushes are best-effort and fail fast against a dead socket.
        "REDIS_URL": os.environ.get("REDIS_URL", f"unix://{work}/no-redis.sock"),
    }
    if args.workers is not None:
        env["AGENTDESK_IMPORT_WORKERS"] = str(args.workers)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.core.files import File

    from calls.models import TelephonyAccount
    from campaigns import services
    from campaigns.models import Campaign

    sheet = work / "bench.csv"
    print(f"Generating {args.rows} rows ...")
    invalid = generate(sheet, args.rows)
    size_mb = sheet.stat().st_size / 1e6
    print(f"  {sheet} ({size_mb:.1f} MB, {invalid} invalid on purpose)")

    account = TelephonyAccount.objects.create(
        name="bench", platform="ryng", base_url="http://127.0.0.1:9/rest-api/v1"
    )
    campaign = Campaign.objects.create(
        name=f"bench {time.strftime('%Y-%m-%d %H:%M:%S')}",
        account=account,
        custom_field_names=["City", "Plan"],
    )
    with open(sheet, "rb") as handle:
        upload = services.upload_create(campaign=campaign, file=File(handle, name="bench.csv"))
    from django.db import connections

    connections.close_all()
    settle_database(url)

    print("Dry run (check every row, write the issue report) ...")
    dry, _dry_wall, dry_peak, _, dry_pss = run_phase("dry", upload.pk, env)
    print(f"  {dry}")
    print("Import (the dry run's staged leads: a new campaign's become its partition) ...")
    imp, _imp_wall, imp_peak, imp_root, imp_pss = run_phase("import", upload.pk, env)
    print(f"  {imp}")
    print("Raw COPY of the same file ...")
    copy_seconds = raw_copy(url, sheet)

    rows = args.rows
    ratio = imp["seconds"] / copy_seconds
    both = dry["seconds"] + imp["seconds"]
    print()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"rows: {rows} ({size_mb:.1f} MB)")
    print(
        f"dry run: {dry['seconds']:.2f} s ({rows / dry['seconds']:,.0f} rows/s), "
        f"peak RSS {dry_peak / 1024:.0f} MB, PSS {dry_pss / 1024:.0f} MB (process tree)"
    )
    print(
        f"import:  {imp['seconds']:.2f} s ({rows / imp['seconds']:,.0f} rows/s), {imp['imported']} leads, "
        f"peak RSS {imp_peak / 1024:.0f} MB, PSS {imp_pss / 1024:.0f} MB "
        f"(process tree; main process {imp_root / 1024:.0f} MB)"
    )
    print(f"validated and imported (dry run + import): {both:.2f} s ({rows / both:,.0f} rows/s)")
    print(f"raw COPY: {copy_seconds:.2f} s ({rows / copy_seconds:,.0f} rows/s)")
    print(f"ratio import / raw COPY: {ratio:.2f}x")
    print(f"ratio (dry run + import) / raw COPY: {both / copy_seconds:.2f}x")

    if args.xlsx:
        book = work / "bench.xlsx"
        print(f"Writing the same rows as {book.name} (not timed) ...")
        write_xlsx(sheet, book)
        book_mb = book.stat().st_size / 1e6
        workbook_campaign = Campaign.objects.create(
            name=f"{campaign.name} xlsx", account=account, custom_field_names=["City", "Plan"]
        )
        started = time.perf_counter()
        with open(book, "rb") as handle:
            book_upload = services.upload_create(
                campaign=workbook_campaign, file=File(handle, name=book.name)
            )
        upload_seconds = time.perf_counter() - started
        connections.close_all()
        settle_database(url)
        book_dry, *_ = run_phase("dry", book_upload.pk, env)
        book_imp, *_ = run_phase("import", book_upload.pk, env)
        if book_imp["imported"] != imp["imported"]:
            raise SystemExit(f"the workbook imported {book_imp['imported']} leads, the CSV {imp['imported']}")
        book_both = upload_seconds + book_dry["seconds"] + book_imp["seconds"]
        print(
            f".xlsx ({book_mb:.1f} MB): upload {upload_seconds:.2f} s + dry run with the conversion"
            f" {book_dry['seconds']:.2f} s + import {book_imp['seconds']:.2f} s = {book_both:.2f} s"
            f" ({rows / book_both:,.0f} rows/s), the same {book_imp['imported']} leads"
        )
        print(f"ratio .xlsx / CSV (upload excluded for the CSV): {book_both / both:.2f}x")
        Campaign.objects.filter(pk=workbook_campaign.pk).delete()

    if args.import_export:
        against_import_export(sheet, min(args.import_export, rows), account, env, url)

    Campaign.objects.filter(pk=campaign.pk).delete()
    TelephonyAccount.objects.filter(pk=account.pk).delete()


def against_import_export(sheet: Path, rows: int, account, env: dict[str, str], url: str) -> None:
    """Item 7 of the module docstring: our import and django-import-export's on the same rows."""
    from django.core.files import File
    from django.db import connections
    from import_export import resources
    from tablib import Dataset

    from campaigns import services
    from campaigns.models import Campaign, Lead
    from campaigns.phone import Normalized, normalize

    head = sheet.with_name(f"first-{rows}.csv")
    with open(sheet, encoding="utf-8") as source, open(head, "w", encoding="utf-8") as out:
        for _ in range(rows + 1):  # the header too
            out.write(source.readline())

    def campaign(label: str) -> Campaign:
        return Campaign.objects.create(
            name=f"bench {label} {time.strftime('%H:%M:%S')}",
            account=account,
            custom_field_names=["City", "Plan"],
        )

    ours = campaign("ours")
    started = time.perf_counter()
    with open(head, "rb") as handle:
        upload = services.upload_create(campaign=ours, file=File(handle, name=head.name))
    upload_seconds = time.perf_counter() - started
    connections.close_all()
    settle_database(url)
    dry, *_ = run_phase("dry", upload.pk, env)
    imp, *_ = run_phase("import", upload.pk, env)
    ours_seconds = upload_seconds + dry["seconds"] + imp["seconds"]

    theirs = campaign("import-export")

    class LeadResource(resources.ModelResource):
        class Meta:
            model = Lead
            fields = ("campaign", "number", "raw_number", "name", "custom_fields")
            import_id_fields = ("campaign", "number")
            skip_unchanged = True
            use_bulk = True
            batch_size = 1000

        def before_import(self, dataset, **kwargs):
            # Its id fields must be columns before any row is read: the rows' work is done here.
            numbers = [normalize(phone, "US") for phone in dataset["Phone"]]
            dataset.append_col(
                [n.e164 if isinstance(n, Normalized) else "" for n in numbers], header="number"
            )
            dataset.append_col(list(dataset["Phone"]), header="raw_number")
            dataset.append_col(list(dataset["Name"]), header="name")
            dataset.append_col([theirs.pk] * len(dataset), header="campaign")
            fields = [
                json.dumps({"City": c, "Plan": p})
                for c, p in zip(dataset["City"], dataset["Plan"], strict=True)
            ]
            dataset.append_col(fields, header="custom_fields")

        def skip_row(self, instance, original, row, import_validation_errors=None):
            return not row["number"] or super().skip_row(instance, original, row, import_validation_errors)

    connections.close_all()
    settle_database(url)
    started = time.perf_counter()
    with open(head, encoding="utf-8") as handle:
        text = handle.read()
    for dry_run in (True, False):  # its admin: the confirm page's dry run (rolled back), then the import
        data = Dataset().load(text, format="csv")
        result = LeadResource().import_data(data, dry_run=dry_run, raise_errors=True, use_transactions=True)
        if dry_run and Lead.objects.filter(campaign=theirs).exists():
            raise SystemExit("django-import-export's dry run kept its rows")
    theirs_seconds = time.perf_counter() - started
    theirs_leads = Lead.objects.filter(campaign=theirs).count()
    if theirs_leads != imp["imported"]:
        raise SystemExit(f"django-import-export imported {theirs_leads} leads, ours {imp['imported']}")
    print(
        f"first {rows:,} rows: ours {ours_seconds:.2f} s (upload {upload_seconds:.2f} + dry run"
        f" {dry['seconds']:.2f} + import {imp['seconds']:.2f}); django-import-export {theirs_seconds:.2f} s"
        f" (dry run + import, {result.totals}); the same {theirs_leads} leads"
    )
    print(f"ratio django-import-export / ours: {theirs_seconds / ours_seconds:.1f}x")
    Campaign.objects.filter(pk__in=[ours.pk, theirs.pk]).delete()


if __name__ == "__main__":
    main()
