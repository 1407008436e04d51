"""``import case_workflow`` stays light: the command line, scheduler and PDF stacks load on use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"

HEAVY_MODULES = ["apscheduler", "rich", "typer", "weasyprint"]

PROBE = """
import json, sys
import case_workflow
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {heavy})))
"""


def test_import_skips_heavy_modules() -> None:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environment.get("PYTHONPATH", "")) if part
    )
    # A fresh interpreter, so modules imported by other tests cannot hide or cause a failure.
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY_MODULES))],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_heavy_modules_are_installed() -> None:
    """The probe above only means something if these modules could have been imported."""
    import importlib.util

    missing = [name for name in HEAVY_MODULES if importlib.util.find_spec(name) is None]
    assert missing == []
