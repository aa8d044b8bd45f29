"""Which access backend holds the users, groups and grants: `auth.backend`."""

from __future__ import annotations

from ..settings import ConfigError, one_of

BACKENDS = ("config", "sql")


def backend_from_settings(settings, app_config, repositories, bootstrap_password, db):
    """(the backend, the API token store or None)."""
    from .config import ConfigBackend

    name = settings.get_value("auth.backend", one_of(*BACKENDS), "config")
    if name == "config":
        return ConfigBackend.from_settings(settings, app_config, repositories,
                                           bootstrap_password), None
    raise ConfigError("auth.backend", "the sql backend is not available in this build")
