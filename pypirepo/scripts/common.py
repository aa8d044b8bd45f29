"""What every console script does first: read the ini the server would read."""

from __future__ import annotations

from pyramid.paster import get_appsettings, setup_logging

from ..settings import AppConfig, Settings, one_line_exit


def load(ini: str):
    """(Settings, AppConfig) from an ini's [app:main], PYPIREPO_* overrides applied."""
    try:
        setup_logging(ini)
    except Exception:  # noqa: BLE001 - an ini without logging sections is fine
        pass
    settings = Settings(get_appsettings(ini))
    with one_line_exit():
        return settings, AppConfig.from_settings(settings)
