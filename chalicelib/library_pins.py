"""Guards for code that reaches into another library's private internals.

A subclass of botocore's private parser methods, pynamodb's ``_connection``, moto's
replaced ``transact_write_items``: each was written against one release and may break
silently on the next (a renamed private method is simply never called). So each names
the exact version it was read against and refuses to run on another; requirements pin
the same versions (tests/unit/test_library_pins.py checks the two agree).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


class UnpinnedLibraryError(RuntimeError):
    """A library whose internals we patch is not the release the patch was written for."""


def installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def require_version(
    distribution: str, pinned: str, patch: str, *, found: str | None = None
) -> None:
    """Raise unless ``distribution`` ``pinned`` is installed (``found`` overrides the
    installed version, for tests). ``patch`` names what depends on its internals."""
    actual = found if found is not None else installed_version(distribution)
    if actual != pinned:
        raise UnpinnedLibraryError(
            f"{patch} relies on private internals of {distribution}=={pinned}, but "
            f"{distribution} {actual or '(not installed)'} is installed: read the patched "
            f"code against that release, run its tests, then move the pin in {patch} "
            "and in requirements*.txt together"
        )
