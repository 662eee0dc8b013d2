"""The product's name and version, as recorded in every export manifest."""

from __future__ import annotations

import os
from typing import Final

PRODUCT_NAME: Final = "Bright Run Conversation Studio"
PRODUCT_VERSION: Final = "1.0.0"  # also the OpenAPI document's version


def product_info() -> dict[str, str]:
    """Name, version and (when the deploy sets BUILD_COMMIT) the commit it was built from."""
    info = {"name": PRODUCT_NAME, "version": PRODUCT_VERSION}
    build = os.environ.get("BUILD_COMMIT")
    if build:
        info["build"] = build
    return info
