"""Fixtures for proxy tests: fake providers on 127.0.0.1 and a transformer directory."""

from __future__ import annotations

import pytest

from tests.proxy.fakes import FakeProvider


@pytest.fixture
async def provider(nursery) -> FakeProvider:
    fake = FakeProvider()
    await nursery.start(fake.serve)
    return fake


@pytest.fixture
async def backup(nursery) -> FakeProvider:
    fake = FakeProvider()
    await nursery.start(fake.serve)
    return fake


@pytest.fixture
def tdir(tmp_path):
    d = tmp_path / "transformers"
    d.mkdir()
    return d
