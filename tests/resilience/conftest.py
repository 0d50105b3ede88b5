"""Shared fixtures: the shipped offline model as the saved model of every bot process, and a reference run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.classify.offline import SHIPPED_MODEL
from tests.resilience.checks import assert_invariants, drain
from tests.resilience.harness import Outcome, Stack, inbox40


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.json"
    shutil.copyfile(SHIPPED_MODEL, path)
    return path


@pytest.fixture(scope="session")
def reference40(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Outcome:
    """The 40-message inbox through a bot that meets no fault: what every fault test must end with."""
    with Stack(tmp_path_factory.mktemp("reference40"), model=trained_model) as ref:
        ref.deliver(inbox40())
        drain(ref, ref.write_config())
        out = ref.outcome()
        assert_invariants(ref, out)
        return out
