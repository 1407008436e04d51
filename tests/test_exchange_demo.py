"""The two-sided demonstration runs, converges and shows the tampered message as rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from case_workflow.errors import InvalidInput
from case_workflow.exchange.demo import run_two_sided_demo


def test_demo_reports_both_sides(tmp_path: Path) -> None:
    result = run_two_sided_demo(tmp_path / "demo", dossiers=4, seed=7)
    mediator, respondent = result.sides
    assert (mediator.institution, respondent.institution) == ("mediator", "al-omrane")
    assert len(mediator.dossiers) == len(respondent.dossiers) == 4
    assert {dossier.state for dossier in mediator.dossiers} == {"closed"}
    assert {dossier.state for dossier in respondent.dossiers} == {"closed"}
    assert mediator.sent["transmit"] == 4
    assert sum(respondent.received.values()) == sum(mediator.sent.values())
    assert [item.reason for item in respondent.rejected] == ["bad_signature"]
    text = result.summary()
    assert "== mediator (mediator.db) ==" in text
    assert "== al-omrane (al-omrane.db) ==" in text
    assert "bad_signature" in text


def test_demo_refuses_used_folder(tmp_path: Path) -> None:
    run_two_sided_demo(tmp_path, dossiers=1, seed=1)
    with pytest.raises(InvalidInput, match="earlier run"):
        run_two_sided_demo(tmp_path, dossiers=1, seed=1)
