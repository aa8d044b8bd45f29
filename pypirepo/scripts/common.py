"""What every console script does first: read the ini the server would read."""

from __future__ import annotations

import sys

from pyramid.paster import get_appsettings, setup_logging

from ..settings import AppConfig, ConfigError, Settings


def load(ini: str):
    """(Settings, AppConfig) from an ini's [app:main], PYPIREPO_* overrides applied."""
    try:
        setup_logging(ini)
    except Exception:  # noqa: BLE001 - an ini without logging sections is fine
        pass
    settings = Settings(get_appsettings(ini))
    try:
        return settings, AppConfig.from_settings(settings)
    except ConfigError as exc:
        sys.exit(f"pypirepo: configuration error: {exc}")


def engine_for(config):
    """The engine of the ini's database, as the server would open it (migrated first when
    the ini says so, refused when its schema is behind)."""
    from ..models import migrate

    return migrate.ready_engine(config.database_url, config.auto_migrate)
