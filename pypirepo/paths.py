"""Where the shipped templates and migrations are.

In a wheel they sit inside the package (setup.py maps them there); in a checkout they
are the folders at the top of the checkout.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    beside = _PACKAGE.parent / name
    if beside.is_dir():
        return beside
    raise FileNotFoundError(f"pypirepo is installed without its {name}/ folder")
