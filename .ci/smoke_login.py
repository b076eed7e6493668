"""Log in as agent1 with a real HTTP client and load the desk (CI's embedded-default check)."""

import re
import sys

import requests

base = sys.argv[1].rstrip("/")
session = requests.Session()
page = session.get(f"{base}/login/", timeout=10)
page.raise_for_status()
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
answer = session.post(
    f"{base}/login/",
    data={"username": "agent1", "password": "demo", "csrfmiddlewaretoken": token},
    headers={"Referer": f"{base}/login/"},
    timeout=10,
)
answer.raise_for_status()
if not answer.url.rstrip("/").endswith("/desk"):
    sys.exit(f"login as agent1 did not land on the desk: {answer.url}")
if "agent1" not in answer.text:
    sys.exit("the desk page does not show the signed-in agent")
print(f"logged in as agent1 and loaded {answer.url} ({len(answer.text)} bytes)")
