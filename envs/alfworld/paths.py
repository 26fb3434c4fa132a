"""Where ALFWorld data lives, and keeping ``import alfworld`` out of the home cache.

``alfworld/info.py`` runs ``os.makedirs($ALFWORLD_DATA or ~/.cache/alfworld)``
at import time. Before anything imports ``alfworld``,
:func:`configure_alfworld_data` sets ``ALFWORLD_DATA`` to this package's own
``data`` folder when the user has not set it. That folder ships with the
package and already exists, so the import writes nothing anywhere. The
placeholder value is never taken for user data, so child processes that
inherit the environment (async vector envs) behave the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ALFWORLD_DATA_ENV",
    "OFFICIAL_VERSION_DIR",
    "SHIPPED_DATA_DIR",
    "configure_alfworld_data",
    "user_alfworld_data",
]

#: The environment variable ALFWorld reads (and ``alfworld-download`` writes into).
ALFWORLD_DATA_ENV = "ALFWORLD_DATA"
#: Name of the folder inside ``$ALFWORLD_DATA`` that holds the official splits.
OFFICIAL_VERSION_DIR = "json_2.1.1"
#: The shipped generated games (and the placeholder value of ``ALFWORLD_DATA``).
SHIPPED_DATA_DIR = Path(__file__).resolve().parent / "data"


def configure_alfworld_data() -> None:
    """Set ``ALFWORLD_DATA`` to the shipped data folder unless the user set it."""
    if not os.environ.get(ALFWORLD_DATA_ENV):
        os.environ[ALFWORLD_DATA_ENV] = str(SHIPPED_DATA_DIR)


def user_alfworld_data() -> Path | None:
    """The folder the user put in ``ALFWORLD_DATA``, or ``None`` (unset, or our placeholder)."""
    value = os.environ.get(ALFWORLD_DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    try:
        if path.resolve() == SHIPPED_DATA_DIR:
            return None
    except OSError:
        return path
    return path
