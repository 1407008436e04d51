"""Tests of the read-only dashboard: pages, filters, letters, headers, and a headless Chromium.

The store is filled through the Engine (36 dossiers, two respondents, answers on time and late,
sweeps that send formal notices and escalate). Expected figures are counted from the scenario
below, never by calling the report code:

- every dossier is transmitted on 2024-01-16 (11:00 in Casablanca), so its 60-day answer
  deadline falls due on 2024-03-16 at 23:59:59 local time;
- Rabat answers 6 dossiers on time (2024-02-20) and 4 late (2024-03-25); Casablanca answers
  4 on time;
- the sweep of 2024-03-18 sends a formal notice (escalation level 1) for the 26 dossiers still
  unanswered then, and the sweep of 2024-04-25 escalates the 22 unanswered ones.

As of 2024-03-31 no dossier is closed, so all 36 are open, and the 22 unanswered ones (Rabat 10,
Casablanca 12) are overdue at level 1.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from case_workflow import Complainant, Engine, SimulatedClock
from case_workflow.dashboard import ReportQuery, create_app
from case_workflow.dashboard.app import PAGE_POLICY, STORED_HTML_POLICY
from case_workflow.dashboard.labels import DASHBOARD_LABELS
from case_workflow.errors import InvalidInput
from case_workflow.store.tables import letters
from tests.conftest import IN_CI, MEDIATOR_AGENT, RESPONDENT_AGENT

RABAT = "al-omrane-rabat-sale-kenitra"
CASABLANCA = "al-omrane-casablanca-settat"
WORKFLOW = "mediator-alomrane"
FILED = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
REVIEWED = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
TRANSMITTED = datetime(2024, 1, 16, 10, 0, tzinfo=UTC)
ON_TIME = datetime(2024, 2, 20, 10, 0, tzinfo=UTC)
LATE = datetime(2024, 3, 25, 10, 0, tzinfo=UTC)
SWEEPS = (
    datetime(2024, 3, 7, 10, 0, tzinfo=UTC),
    datetime(2024, 3, 18, 10, 0, tzinfo=UTC),
    datetime(2024, 4, 25, 10, 0, tzinfo=UTC),
)
AS_OF = "2024-03-31"
# A subject with markup: every page must show it as text.
SUBJECT = 'Titre foncier <script>alert("x")</script> & lot'
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 120


@dataclass(frozen=True)
class Scenario:
    url: str
    dossiers: dict[str, list[str]]
    on_time: dict[str, int]
    late: dict[str, int]

    def overdue(self, respondent: str) -> int:
        return len(self.dossiers[respondent]) - self.on_time[respondent] - self.late[respondent]

    def escalated_reference(self) -> str:
        """A Rabat dossier never answered: it got a formal notice and was escalated."""
        return self.dossiers[RABAT][-1]


def fill(url: str) -> Scenario:
    """File, transmit, answer and sweep the scenario's dossiers through the Engine."""
    clock = SimulatedClock(FILED)
    counts = {RABAT: 20, CASABLANCA: 16}
    on_time = {RABAT: 6, CASABLANCA: 4}
    late = {RABAT: 4, CASABLANCA: 0}
    references: dict[str, list[str]] = {RABAT: [], CASABLANCA: []}
    with Engine(url, workflows=[WORKFLOW], clock=clock, create_schema=True) as engine:
        for respondent, count in counts.items():
            for _ in range(count):
                dossier = engine.file(
                    WORKFLOW,
                    actor=MEDIATOR_AGENT,
                    complainant=Complainant("Citoyen", email="citoyen@example.org"),
                    subject=SUBJECT,
                    respondent=respondent,
                    at=FILED,
                )
                engine.fire(dossier.reference, "start_review", actor=MEDIATOR_AGENT, at=REVIEWED)
                engine.fire(
                    dossier.reference,
                    "transmit",
                    actor=MEDIATOR_AGENT,
                    payload={"respondent": respondent},
                    at=TRANSMITTED,
                )
                references[respondent].append(dossier.reference)

        def answer(reference: str, at: datetime) -> None:
            engine.fire(
                reference,
                "answer",
                actor=RESPONDENT_AGENT,
                payload={"answer_summary": "Dossier traité"},
                at=at,
            )

        for respondent, refs in references.items():
            for reference in refs[: on_time[respondent]]:
                answer(reference, ON_TIME)
        engine.sweep(SWEEPS[0])
        engine.sweep(SWEEPS[1])
        first_late = on_time[RABAT]
        for reference in references[RABAT][first_late : first_late + late[RABAT]]:
            answer(reference, LATE)
        engine.sweep(SWEEPS[2])
    return Scenario(url, references, on_time, late)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("dashboard")
    return fill(f"sqlite:///{folder}/store.db")


@pytest.fixture
def client(scenario: Scenario) -> Iterator[TestClient]:
    clock = SimulatedClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    with Engine(scenario.url, workflows=[WORKFLOW], clock=clock) as engine:
        # TestClient sends "Host: testserver".
        app = create_app(engine, clock=clock, allowed_hosts=["testserver"])
        with TestClient(app) as test_client:
            yield test_client


def figure(html: str, key: str) -> str:
    match = re.search(rf'id="figure-{key}">([^<]*)<', html)
    assert match is not None, f"figure {key} missing from the page"
    return unescape(match.group(1))


def listed_references(html: str) -> list[str]:
    return re.findall(r'<a href="/dossiers/([^"?/]+)\?[^"]*">', html)


# --- pages through the ASGI client -------------------------------------------------------------


def test_index_figures_as_of(client: TestClient, scenario: Scenario) -> None:
    page = client.get("/", params={"as_of": AS_OF, "lang": "en"})
    assert page.status_code == 200
    overdue = scenario.overdue(RABAT) + scenario.overdue(CASABLANCA)
    assert figure(page.text, "open_total") == "36"
    assert figure(page.text, "overdue_total") == str(overdue)
    assert figure(page.text, "on_time") == "10"
    assert figure(page.text, "late") == "4"
    assert len(listed_references(page.text)) == overdue


def test_index_respondent_filter(client: TestClient, scenario: Scenario) -> None:
    page = client.get("/", params={"as_of": AS_OF, "lang": "en", "respondent": RABAT})
    assert page.status_code == 200
    assert figure(page.text, "open_total") == "20"
    assert figure(page.text, "overdue_total") == str(scenario.overdue(RABAT))
    assert figure(page.text, "on_time") == "6"
    assert figure(page.text, "late") == "4"
    assert set(listed_references(page.text)) <= set(scenario.dossiers[RABAT])
    assert f'<option value="{RABAT}" selected>' in page.text


def test_index_region_and_period(client: TestClient, scenario: Scenario) -> None:
    casablanca = client.get(
        "/", params={"as_of": AS_OF, "lang": "en", "region": "casablanca-settat"}
    )
    assert figure(casablanca.text, "overdue_total") == str(scenario.overdue(CASABLANCA))
    later = client.get("/", params={"as_of": AS_OF, "lang": "en", "filed_from": "2024-01-16"})
    assert figure(later.text, "open_total") == "0"


def test_index_escalated_later(client: TestClient) -> None:
    # By 2024-05-01 the unanswered dossiers were escalated, which closed their deadline.
    page = client.get("/", params={"as_of": "2024-05-01", "lang": "en"})
    assert figure(page.text, "overdue_total") == "0"
    assert figure(page.text, "late") == "26"


def test_index_languages(client: TestClient) -> None:
    arabic = client.get("/", params={"as_of": AS_OF, "lang": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "تقرير التصعيد" in arabic.text
    french = client.get("/", params={"as_of": AS_OF})
    assert '<html lang="fr" dir="ltr">' in french.text
    assert "Rapport d&#39;escalade" in french.text


def test_index_invalid_date(client: TestClient) -> None:
    page = client.get("/", params={"as_of": "2024-13-01"})
    assert page.status_code == 400
    assert "invalid as_of &#39;2024-13-01&#39;" in page.text


def test_index_invalid_language(client: TestClient) -> None:
    page = client.get("/", params={"lang": "de"})
    assert page.status_code == 400
    assert "invalid lang" in page.text


def test_index_reversed_period(client: TestClient) -> None:
    page = client.get("/", params={"filed_from": "2024-02-01", "filed_to": "2024-01-01"})
    assert page.status_code == 400


def test_index_escapes_filter_value(client: TestClient) -> None:
    page = client.get("/", params={"region": '"><script>alert(1)</script>'})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text


def test_dossier_page_history(client: TestClient, scenario: Scenario) -> None:
    reference = scenario.escalated_reference()
    page = client.get(f"/dossiers/{reference}", params={"lang": "en"})
    assert page.status_code == 200
    history = page.text.split('id="history"')[1].split("</table>")[0]
    triggers = re.findall(
        r"<tr>\s*<td[^>]*>(\d+)</td><td[^>]*>[^<]*</td><td[^>]*>([^<]+)</td>", history
    )
    assert [trigger for _seq, trigger in triggers] == [
        "file",
        "start_review",
        "transmit",
        "reminder",
        "escalation",
        "escalate",
    ]
    assert "escalated" in page.text
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_dossier_page_deadlines_letters(client: TestClient, scenario: Scenario) -> None:
    page = client.get(f"/dossiers/{scenario.escalated_reference()}", params={"lang": "fr"})
    deadlines = page.text.split('id="deadlines"')[1].split("</table>")[0]
    assert "missed" in deadlines
    assert "2024-03-16 23:59" in deadlines
    letter_rows = page.text.split('id="letters"')[1].split("</table>")[0]
    for name in ("acknowledgement", "transmission", "reminder", "formal_notice"):
        assert name in letter_rows
    assert "escalation_notice" in letter_rows


def test_dossier_unknown(client: TestClient) -> None:
    page = client.get("/dossiers/MA-1999-000001")
    assert page.status_code == 404
    assert "MA-1999-000001" in page.text


def test_letter_served_as_stored(client: TestClient, scenario: Scenario) -> None:
    reference = scenario.escalated_reference()
    page = client.get(f"/dossiers/{reference}")
    links = re.findall(r'href="(/dossiers/[^"]+/letters/(\d+))"', page.text)
    assert links
    with Engine(scenario.url, workflows=[WORKFLOW]) as engine, engine.database.connect() as db:
        stored = dict(db.execute(select(letters.c.id, letters.c.html)).tuples().all())
    for path, letter_id in links:
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["content-security-policy"] == STORED_HTML_POLICY
        assert answer.text == stored[int(letter_id)]


def test_letter_other_dossier(client: TestClient, scenario: Scenario) -> None:
    first, second = scenario.dossiers[RABAT][:2]
    page = client.get(f"/dossiers/{first}")
    letter_id = re.findall(r"/letters/(\d+)", page.text)[0]
    assert client.get(f"/dossiers/{second}/letters/{letter_id}").status_code == 404


def test_letter_ignores_query(client: TestClient, scenario: Scenario) -> None:
    reference = scenario.escalated_reference()
    page = client.get(f"/dossiers/{reference}")
    path = re.findall(r'href="(/dossiers/[^"]+/letters/\d+)"', page.text)[0]
    plain = client.get(path)
    injected = client.get(path, params={"lang": "en", "subject": "<b>injected</b>"})
    assert injected.text == plain.text


def test_headers_on_pages(client: TestClient) -> None:
    page = client.get("/", params={"as_of": AS_OF})
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in PAGE_POLICY


def test_printable_report(client: TestClient) -> None:
    page = client.get("/report", params={"as_of": AS_OF, "lang": "en"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == STORED_HTML_POLICY
    assert "Escalation report" in page.text


def test_report_downloads(client: TestClient, scenario: Scenario) -> None:
    data = client.get("/report.json", params={"as_of": AS_OF, "respondent": RABAT}).json()
    assert data["escalated_total"] == scenario.overdue(RABAT)
    assert data["generated_for"]["respondent"] == RABAT
    table = client.get("/report.csv", params={"as_of": AS_OF})
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in table.headers["content-disposition"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_write_methods_rejected(client: TestClient, method: str) -> None:
    assert client.request(method, "/").status_code == 405
    assert client.request(method, "/dossiers/MA-2024-000001").status_code == 405


def test_unknown_host_rejected(client: TestClient) -> None:
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_store_read_only(scenario: Scenario) -> None:
    with Engine(scenario.url, workflows=[WORKFLOW]) as engine:
        create_app(engine)
        with pytest.raises(OperationalError, match="readonly"), engine.database.begin() as db:
            db.execute(text("DELETE FROM cw_outbox"))


def test_labels_same_keys() -> None:
    keys = {language: set(labels) for language, labels in DASHBOARD_LABELS.items()}
    assert keys["ar"] == keys["fr"]
    assert keys["en"] == keys["fr"]


def test_query_parse_and_links() -> None:
    query = ReportQuery.parse({"respondent": " x ", "filed_to": "2024-02-01", "lang": "ar"})
    assert query.respondent == "x"
    assert query.query_string() == "?respondent=x&filed_to=2024-02-01&lang=ar"
    assert query.query_string(respondent=None) == "?filed_to=2024-02-01&lang=ar"
    with pytest.raises(InvalidInput, match="at most 100"):
        ReportQuery.parse({"region": "r" * 101})


def test_query_instant_capped() -> None:
    now = datetime(2024, 3, 31, 8, 0, tzinfo=UTC)
    zone = UTC
    assert ReportQuery().instant(now, zone) == now
    assert ReportQuery.parse({"as_of": "2024-03-31"}).instant(now, zone) == now
    ended = ReportQuery.parse({"as_of": "2024-03-30"}).instant(now, zone)
    assert ended == datetime(2024, 3, 30, 23, 59, 59, 999_999, tzinfo=UTC)


# --- the command and a headless Chromium -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(scenario: Scenario) -> Iterator[str]:
    """Run ``case-workflow dashboard`` on a free loopback port; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "case_workflow.cli",
            "dashboard",
            "--db",
            scenario.url,
            "--port",
            str(port),
            "--workflow",
            WORKFLOW,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/?as_of={AS_OF}", timeout=10) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() - started > SERVER_START_SECONDS:
                process.kill()
                output = process.communicate()[0].decode(errors="replace")
                pytest.fail(f"dashboard did not start on port {port}:\n{output}")
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_binds_loopback(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{server}/dossiers/MA-2024-000001") as answer:
        assert answer.headers["content-security-policy"] == PAGE_POLICY


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if IN_CI:
            pytest.fail("chromium is not installed; scripts/setup.sh installs it")
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    return found


def run_chromium(chromium: str, profile: Path, *arguments: str) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_chromium_figures(chromium: str, server: str, scenario: Scenario, tmp_path: Path) -> None:
    dom = run_chromium(chromium, tmp_path, "--dump-dom", f"{server}/?as_of={AS_OF}&lang=en")
    overdue = scenario.overdue(RABAT) + scenario.overdue(CASABLANCA)
    assert figure(dom, "open_total") == "36"
    assert figure(dom, "overdue_total") == str(overdue)
    assert len(listed_references(dom)) == overdue


def test_chromium_respondent_filter(
    chromium: str, server: str, scenario: Scenario, tmp_path: Path
) -> None:
    url = f"{server}/?as_of={AS_OF}&lang=en&respondent={RABAT}"
    dom = run_chromium(chromium, tmp_path, "--dump-dom", url)
    assert figure(dom, "open_total") == str(len(scenario.dossiers[RABAT]))
    assert figure(dom, "overdue_total") == str(scenario.overdue(RABAT))
    assert figure(dom, "on_time") == str(scenario.on_time[RABAT])
    assert figure(dom, "late") == str(scenario.late[RABAT])


def test_chromium_dossier_link(
    chromium: str, server: str, scenario: Scenario, tmp_path: Path
) -> None:
    dom = run_chromium(chromium, tmp_path, "--dump-dom", f"{server}/?as_of={AS_OF}&lang=en")
    link = re.search(r'<a href="(/dossiers/[^"]+)">', dom)
    assert link is not None
    page = run_chromium(chromium, tmp_path, "--dump-dom", server + unescape(link.group(1)))
    assert 'id="history"' in page
    assert "formal_notice" in page


def test_chromium_screenshot(chromium: str, server: str, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "dashboard.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        f"{server}/?as_of={AS_OF}&lang=ar",
    )
    assert shot.is_file()
    keep = os.environ.get("CASE_WORKFLOW_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        gray = image.convert("L")
        histogram = gray.histogram()
    pixels = 1280 * 2000
    dark = sum(histogram[:200])
    # Text, table borders and bars cover a visible share of the page, but not all of it.
    assert dark > pixels // 200
    assert dark < pixels // 2


# --- progress of the report command ------------------------------------------------------------


def report_command(scenario: Scenario, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "case_workflow.cli",
        "report",
        "--db",
        scenario.url,
        "--workflow",
        WORKFLOW,
        "--as-of",
        AS_OF,
        "--output",
        str(output),
    ]


def test_report_piped_quiet(scenario: Scenario, tmp_path: Path) -> None:
    result = subprocess.run(
        report_command(scenario, tmp_path), capture_output=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert b"\x1b[" not in result.stdout
    assert b"\x1b[" not in result.stderr
    assert result.stderr == b""
    assert len(result.stdout.splitlines()) == 3


def test_report_terminal_progress(scenario: Scenario, tmp_path: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        result = subprocess.run(
            report_command(scenario, tmp_path),
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=300,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert result.returncode == 0
    # The progress display draws on the terminal, and the file list still goes to stdout.
    assert b"\x1b[" in shown
    assert b"\x1b[" not in result.stdout
