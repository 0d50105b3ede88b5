"""The fake OpenAI server, started once per test module (starting one per test is slow) and reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.fake_openai import FakeOpenAI
from tests.httpfake import FakeServer


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeOpenAI]:
    with FakeServer() as srv:
        yield FakeOpenAI(srv)


@pytest.fixture
def fake(shared_fake: FakeOpenAI) -> FakeOpenAI:
    shared_fake.reset()
    return shared_fake
