"""Static metadata lives in setup.cfg; this file says what a static file cannot.

templates/ and migrations/ sit at the top of the checkout but are shipped inside the
package (pypirepo.templates, pypirepo.migrations), so an installed wheel finds them next to
its code. Every folder below them is listed as a package too, found here rather than
written out, so a new folder of templates (ui/, errors/ ...) ships without a change here
and setuptools has no folder of data files it does not know what to do with.
"""

from setuptools import find_namespace_packages, setup

SHIPPED = {"pypirepo.templates": "templates", "pypirepo.migrations": "migrations"}
NOT_PACKAGES = ["*__pycache__*"]


def packages() -> list[str]:
    found = find_namespace_packages(include=["pypirepo", "pypirepo.*"], exclude=NOT_PACKAGES)
    for package, folder in SHIPPED.items():
        found.append(package)
        found += [f"{package}.{sub}"
                  for sub in find_namespace_packages(where=folder, exclude=NOT_PACKAGES)]
    return found


setup(packages=packages(), package_dir=SHIPPED)
