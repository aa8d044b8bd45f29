"""The product's documentation stands on its own: the README, the packaging files, the
code and the templates never send a reader to documents outside the repository, and the
README's install steps are ones that can work."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Notes kept beside the repository while it is worked on, which a user never has.
OUTSIDE = re.compile(r"STANDARDS|BACKENDS\.md|DESIGN\.md|\.\./shared|shared/|"
                     r"\b[SDAUP]-\d\d\b|design card")


def product_files():
    yield from (REPO / name for name in ("README.md", "setup.cfg", "setup.py", "MANIFEST.in",
                                         "Makefile", "development.ini", "production.ini"))
    for folder in ("pypirepo", "templates", "migrations"):
        yield from (p for p in (REPO / folder).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)


def test_no_reference_to_documents_outside_the_repository():
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path in product_files()
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if OUTSIDE.search(line)]
    assert not found, "\n".join(found)


def test_readme_installs_from_the_checkout_or_a_wheel():
    readme = (REPO / "README.md").read_text()
    # pypirepo is not on the public index: `pip install 'pypirepo[...]'` cannot work.
    assert not re.search(r"pip install '?pypirepo\b", readme)
    assert "pip install '.[postgresql,s3]'" in readme
    assert "python -m build --wheel" in readme
