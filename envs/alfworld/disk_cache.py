"""An on-disk cache of ALFWorld problem translations, shared by every process.

Translating a game's PDDL problem with Fast Downward is most of a game's first
reset (about 110-160 ms of 120-170 ms on a 2-core machine; a replay takes 5 to 10 ms).
The in-process cache of :mod:`envs.alfworld.engine` only helps games a process has
already played, and a training run draws a new game for almost every episode,
so it also keeps each translation here, compressed (about 40 KB a game). Reading
one back takes a few milliseconds. The generator's workers translate every game they check,
so a generated game's first reset in a later process is already warm.

Where: ``MENTORGYM_ALFWORLD_TRANSLATIONS`` names the folder; ``off`` (or ``0``)
turns the cache off. By default it is ``$XDG_CACHE_HOME/mentorgym/alfworld-translations``
(``~/.cache/...``). Entries are keyed by the domain, the problem, the Fast Downward
version and this module's format, so a changed game or translator never reads a
stale entry. An entry that cannot be read is translated again and rewritten. A
folder that cannot be written is skipped silently (the translation still works).

Entries are compressed JSON of plain data (the SAS text, action parameters, types,
initial facts), never pickles: the translator's and TextWorld's objects cache string
hashes, which differ between processes, so they are rebuilt by the process that reads
an entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "DiskStats", "cache_dir", "entry_key", "entry_path", "load", "stats", "store"]

ENV_VAR = "MENTORGYM_ALFWORLD_TRANSLATIONS"
#: Bumped whenever what :func:`store` writes changes shape.
FORMAT = 2
_OFF = {"off", "0", "none", "false"}


def cache_dir() -> Path | None:
    """The folder that holds the translations, or ``None`` when the cache is off."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mentorgym" / "alfworld-translations"


@functools.cache  # importlib.metadata reads the package's files: about a millisecond a call
def _translator_version() -> str:
    try:
        return metadata.version("fast_downward_textworld")
    except metadata.PackageNotFoundError:  # an unpackaged checkout: key on nothing more
        return "unknown"


def entry_key(domain: str, problem: str) -> str:
    """The file name stem of a problem's entry (content, translator and format)."""
    sha = hashlib.sha256()
    for part in (f"format {FORMAT}", _translator_version(), domain, problem):
        sha.update(part.encode("utf-8"))
        sha.update(b"\x00")
    return sha.hexdigest()


def entry_path(domain: str, problem: str) -> Path | None:
    """Where a problem's entry lives, or ``None`` when the cache is off."""
    folder = cache_dir()
    return None if folder is None else folder / f"{entry_key(domain, problem)}.json.z"


class DiskStats:
    """Counts of entries read, written, missing and unreadable in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads = self.writes = self.misses = self.unreadable = 0

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def reset(self) -> None:
        with self._lock:
            self.reads = self.writes = self.misses = self.unreadable = 0


stats = DiskStats()


def load(domain: str, problem: str) -> dict[str, Any] | None:
    """The stored parts of a problem's translation, or ``None`` (off, absent, unreadable)."""
    path = entry_path(domain, problem)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        stats.count("misses")
        return None
    try:
        parts = json.loads(zlib.decompress(blob))
        if not isinstance(parts, dict) or parts.get("format") != FORMAT:
            raise ValueError("not an entry of this format")
        parts["sas"] = parts["sas"].encode("utf-8")
    except Exception:  # truncated, corrupt or foreign: translate again and overwrite it
        stats.count("unreadable")
        return None
    stats.count("reads")
    return parts


def store(domain: str, problem: str, parts: dict[str, Any]) -> None:
    """Write a translation's parts atomically; a folder that cannot be written is skipped."""
    path = entry_path(domain, problem)
    if path is None:
        return
    plain = {**parts, "sas": parts["sas"].decode("utf-8"), "format": FORMAT}
    blob = zlib.compress(json.dumps(plain, separators=(",", ":")).encode("utf-8"), 1)
    # A unique temporary name: several processes may store the same game at once.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(blob)
        os.replace(partial, path)
    except OSError:
        try:
            partial.unlink(missing_ok=True)
        except OSError:  # the folder itself is unusable: nothing was written
            pass
        return
    stats.count("writes")
