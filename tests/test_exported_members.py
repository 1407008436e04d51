"""The package's front door: ``case_workflow.__all__`` is sorted and lists every public name."""

from __future__ import annotations

import types

import case_workflow

# Dunder names that are part of the public API.
PUBLIC_DUNDERS = {"__version__"}


def _public_names() -> set[str]:
    return {
        name
        for name, value in vars(case_workflow).items()
        # Submodules become attributes of the package when imported; they are not re-exports.
        if not isinstance(value, types.ModuleType)
        and (not name.startswith("_") or name in PUBLIC_DUNDERS)
    }


def test_all_is_sorted() -> None:
    assert case_workflow.__all__ == sorted(case_workflow.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(case_workflow.__all__) == len(set(case_workflow.__all__))


def test_all_lists_every_public_name() -> None:
    assert set(case_workflow.__all__) == _public_names()


def test_exported_classes_name_the_package() -> None:
    for name in case_workflow.__all__:
        value = getattr(case_workflow, name)
        if isinstance(value, type):
            assert value.__module__.startswith("case_workflow."), name
