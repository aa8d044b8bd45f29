"""Every storage test runs once per backend: local, and S3, GCS and Azure on local servers.

Each remote backend gets one bucket per session and each test its own prefix inside it,
which also checks that objects outside the configured prefix stay invisible.
"""

from __future__ import annotations

import uuid

import pytest

from pypirepo.settings import Settings
from pypirepo.storage import storage_from_settings

BACKENDS = ("local", "s3", "gcs", "azure")


def backend_param(kind: str):
    # One xdist worker per remote kind, so its server starts once (loadgroup scheduling).
    marks = [] if kind == "local" else [pytest.mark.xdist_group(kind)]
    return pytest.param(kind, id=kind, marks=marks)


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*kinds): run a storage test on these only")


def pytest_generate_tests(metafunc):
    if "storage_settings" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("backends")
        kinds = only.args if only else BACKENDS
        metafunc.parametrize("storage_settings", [backend_param(k) for k in kinds],
                             indirect=True)


@pytest.fixture(scope="session")
def session_buckets():
    return {}


def remote_settings(request, kind: str, buckets: dict, prefix: str | None = None) -> dict:
    emulator = request.getfixturevalue(f"{kind}_server")
    if kind not in buckets:
        buckets[kind] = emulator.create_bucket()
    return emulator.settings(buckets[kind], prefix=prefix or f"t-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def storage_settings(request, tmp_path, session_buckets) -> dict:
    kind = request.param
    if kind == "local":
        return {"pypirepo.storage": "local", "storage.dir": str(tmp_path / "storage")}
    return remote_settings(request, kind, session_buckets)


def build(settings: dict):
    # An empty environment: the test's settings alone decide, whatever PYPIREPO_* is set.
    return storage_from_settings(Settings(settings, environ={}))


@pytest.fixture
def store(storage_settings):
    storage = build(storage_settings)
    yield storage
    storage.close()


@pytest.fixture
def make_store():
    """Build more stores from settings; each is closed after the test."""
    made = []

    def make(settings: dict):
        made.append(build(settings))
        return made[-1]

    yield make
    for storage in made:
        storage.close()
