"""Demo preview campaigns for the platforms that hand out their own leads (Huawei, Genesys).

``python -m emulators --demo`` loads them through the public control API once the server is up,
so ``make run`` has leads to offer on every platform. Tests never pass ``--demo``: they load what
they need themselves. ``callData`` (Huawei) and ``userData`` (Genesys) carry the customer's name
and custom fields; the product shows them on the preview card.
"""

from __future__ import annotations

import json
import logging

import requests

log = logging.getLogger("emulators")

GENESYS_CAMPAIGN = "DemoPreview"
_FIRST = ["Maya", "Leo", "Ines", "Arjun", "Chloe", "Mateo", "Hana", "Felix", "Amara", "Jonas"]
_LAST = ["Lopez", "Brown", "Tanaka", "Singh", "Dubois", "Costa", "Park", "Weber", "Okafor", "Berg"]
_AREAS = [
    ("718", "Brooklyn"),
    ("773", "Chicago"),
    ("720", "Denver"),
    ("510", "Oakland"),
    ("786", "Miami"),
    ("425", "Bellevue"),
    ("857", "Boston"),
    ("737", "Austin"),
]
_TIERS = ["Bronze", "Silver", "Gold"]


def demo_customers(offset: int, count: int) -> list[dict[str, str]]:
    rows = []
    for i in range(count):
        area, city = _AREAS[i % len(_AREAS)]
        rows.append(
            {
                "name": f"{_FIRST[(i + offset) % 10]} {_LAST[(i * 7 + offset) % 10]}",
                "number": f"+1{area}555{offset + i:04d}",
                "City": city,
                "Plan": _TIERS[i % 3],
                "Account": f"AC-{offset + 2000 + i}",
            }
        )
    return rows


def load_demo(base_url: str, count: int = 40) -> None:
    huawei = [
        {"number": row["number"], "callData": json.dumps({k: v for k, v in row.items() if k != "number"})}
        for row in demo_customers(100, count)
    ]
    genesys = [
        {"phoneNumber": row["number"], "userData": {k: v for k, v in row.items() if k != "number"}}
        for row in demo_customers(300, count)
    ]
    for path, body in (
        ("/_emulator/huawei/campaigns", {"records": huawei, "replace": True}),
        ("/_emulator/genesys/campaigns", {"name": GENESYS_CAMPAIGN, "records": genesys}),
    ):
        answer = requests.post(f"{base_url}{path}", json=body, timeout=10)
        answer.raise_for_status()
    log.info("demo preview campaigns loaded: %d Huawei records, %d Genesys records", count, count)
