"""Registry numbers: per-institution pattern, gap-free yearly sequence, local year, concurrency."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from case_workflow import Actor, Complainant, Engine, SimulatedClock, load_builtin
from case_workflow.calendars import load_zone
from case_workflow.outgoing import registry_number, registry_year
from case_workflow.store.database import write_transaction
from case_workflow.store.registry import last_in_sequence, next_in_sequence
from case_workflow.store.tables import letters
from tests.conftest import MEDIATOR_AGENT
from tests.workflow_files import variant

RESPONDENT = "al-omrane-rabat-sale-kenitra"
WORKFLOW = load_builtin("mediator-alomrane")


class Rollback(Exception):
    """Raised inside a transaction to roll it back."""


def file_dossier(engine: Engine, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "actor": MEDIATOR_AGENT,
        "complainant": Complainant("Citoyen 00042", email="c42@example.org"),
        "subject": "Lot non attribué",
        "respondent": RESPONDENT,
    }
    arguments.update(overrides)
    return engine.file("mediator-alomrane", **arguments).reference  # type: ignore[arg-type]


def issued_numbers(engine: Engine) -> list[str]:
    with engine.database.connect() as connection:
        rows = connection.execute(
            select(letters.c.registry_number).distinct().order_by(letters.c.registry_number)
        )
        return list(rows.scalars())


def take(engine: Engine, year: int = 2024, *, roll_back: bool = False) -> str | None:
    """Take a mediator letter number in a transaction of its own; None if rolled back."""
    try:
        with write_transaction(engine.database) as connection:
            number = registry_number(connection, WORKFLOW, "mediator", year)
            if roll_back:
                raise Rollback
    except Rollback:
        return None
    return number


def sequence_of(number: str) -> int:
    return int(number.rsplit("/", 1)[1])


def test_letter_numbers_follow_pattern(engine: Engine) -> None:
    first = file_dossier(engine)
    second = file_dossier(engine)

    assert {letter.registry_number for letter in engine.letters(first)} == {"IMR/2024/00001"}
    assert {letter.registry_number for letter in engine.letters(second)} == {"IMR/2024/00002"}


def test_one_number_per_letter_all_languages(engine: Engine) -> None:
    reference = file_dossier(engine)

    stored = engine.letters(reference)

    assert sorted(letter.language for letter in stored) == ["ar", "fr"]
    assert len({letter.registry_number for letter in stored}) == 1


def test_custom_pattern_per_institution(tmp_path: Path, clock: SimulatedClock) -> None:
    path = variant(
        tmp_path,
        (
            "name: {fr: Bureau des plaintes}",
            "name: {fr: Bureau des plaintes}\n"
            "    registry: {prefix: BDP, pattern: '{prefix}-{year}-{seq:04d}'}",
        ),
    )
    agent = Actor(name="Agent", role="agent", institution="office")
    with Engine(
        f"sqlite:///{tmp_path}/store.db", workflows=[path], clock=clock, create_schema=True
    ) as engine:
        dossier = engine.file("minimal", actor=agent, complainant=Complainant("X"), subject="s")

        (letter,) = engine.letters(dossier.reference)

    assert letter.registry_number == "BDP-2024-0001"


def test_year_of_letters_is_local(engine: Engine) -> None:
    # Morocco was on UTC+1 in December 2024: 23:30 UTC on 31 December is 00:30 on
    # 1 January 2025 there.
    before = file_dossier(engine, at=datetime(2024, 12, 31, 22, 30, tzinfo=UTC))
    after = file_dossier(engine, at=datetime(2024, 12, 31, 23, 30, tzinfo=UTC))

    assert {letter.registry_number for letter in engine.letters(before)} == {"IMR/2024/00001"}
    assert {letter.registry_number for letter in engine.letters(after)} == {"IMR/2025/00001"}
    assert after == "MA-2025-000001"


def test_registry_year_of_instants() -> None:
    zone = "Africa/Casablanca"

    assert registry_year(datetime(2024, 12, 31, 22, 59, tzinfo=UTC), zone) == 2024
    assert registry_year(datetime(2024, 12, 31, 23, 0, tzinfo=UTC), zone) == 2025
    assert registry_year(datetime(2024, 12, 31, 23, 30, tzinfo=UTC), "UTC") == 2024


def test_year_change_restarts_at_one(engine: Engine) -> None:
    assert take(engine, 2024) == "IMR/2024/00001"
    assert take(engine, 2024) == "IMR/2024/00002"
    assert take(engine, 2025) == "IMR/2025/00001"
    assert take(engine, 2024) == "IMR/2024/00003"


def test_rollback_returns_number(engine: Engine) -> None:
    assert take(engine) == "IMR/2024/00001"
    assert take(engine, roll_back=True) is None
    assert take(engine, roll_back=True) is None

    assert take(engine) == "IMR/2024/00002"


def test_failed_step_leaves_no_gap(tmp_path: Path, clock: SimulatedClock) -> None:
    # The receipt fails while rendering (after its number was taken) for one subject only.
    path = variant(tmp_path)
    template = tmp_path / "letters" / "receipt.fr.html.j2"
    template.write_text(
        template.read_text(encoding="utf-8")
        + '{% if dossier.subject == "boom" %}{{ 1 / 0 }}{% endif %}\n',
        encoding="utf-8",
    )
    agent = Actor(name="Agent", role="agent", institution="office")
    with Engine(
        f"sqlite:///{tmp_path}/store.db", workflows=[path], clock=clock, create_schema=True
    ) as engine:
        with pytest.raises(ZeroDivisionError):
            engine.file("minimal", actor=agent, complainant=Complainant("X"), subject="boom")
        dossier = engine.file("minimal", actor=agent, complainant=Complainant("X"), subject="ok")

        (letter,) = engine.letters(dossier.reference)

    assert letter.registry_number == "OFFICE/2024/00001"
    assert dossier.reference == "M-2024-000001"


def test_threads_take_contiguous_numbers(engine: Engine) -> None:
    committed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def work(seed: int) -> None:
        chooser = random.Random(seed)
        start.wait()
        for _ in range(15):
            number = take(engine, roll_back=chooser.random() < 0.3)
            if number is not None:
                with lock:
                    committed.append(number)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sequences = sorted(sequence_of(number) for number in committed)
    assert sequences == list(range(1, len(committed) + 1))
    with engine.database.connect() as connection:
        assert last_in_sequence(connection, "letters:IMR", 2024) == len(committed)


def test_threads_filing_number_letters(engine: Engine, clock: SimulatedClock) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        start.wait()
        try:
            for _ in range(3):
                file_dossier(engine)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    numbers = issued_numbers(engine)
    assert [sequence_of(number) for number in numbers] == list(range(1, 13))


PROCESS_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from case_workflow import load_builtin
    from case_workflow.outgoing import registry_number
    from case_workflow.store.database import connect, write_transaction

    url, count, seed, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    workflow = load_builtin("mediator-alomrane")
    database = connect(url)
    while not os.path.exists(go):
        time.sleep(0.01)
    for index in range(count):
        roll_back = (index + seed) % 4 == 0
        try:
            with write_transaction(database) as connection:
                number = registry_number(connection, workflow, "mediator", 2024)
                if roll_back:
                    raise LookupError
        except LookupError:
            continue
        print(number, flush=True)
    """
)


def test_processes_take_contiguous_numbers(engine: Engine, tmp_path: Path) -> None:
    go = tmp_path / "go"
    url = engine.database.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, url, "20", str(seed), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    go.touch()
    outputs = [process.communicate(timeout=300) for process in processes]

    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    committed = [line for out, _err in outputs for line in out.split()]
    assert len(committed) == 45
    assert len(set(committed)) == 45
    assert sorted(sequence_of(number) for number in committed) == list(range(1, 46))


def test_last_in_sequence_empty(engine: Engine) -> None:
    with write_transaction(engine.database) as connection:
        assert last_in_sequence(connection, "letters:NONE", 2024) == 0
        assert next_in_sequence(connection, "letters:NONE", 2024) == 1
        assert last_in_sequence(connection, "letters:NONE", 2024) == 1


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2040, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_registry_year_is_local_year(moment: datetime) -> None:
    year = registry_year(moment, "Africa/Casablanca")

    assert year == moment.astimezone(load_zone("Africa/Casablanca")).year
    # Morocco's offset is UTC+0 or UTC+1 in these years.
    assert year in {moment.year, (moment + timedelta(hours=1)).year}
