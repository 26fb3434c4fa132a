#!/usr/bin/env python
"""Write or check ``constraints.txt``: the exact versions the test suite passes on.

``constraints.txt`` is ``pip freeze`` of the project's virtual environment
minus the project itself; ``scripts/ensure_venv.sh`` (``make venv``, ``make
test``, ``make benchmark``) installs with ``pip install -c constraints.txt``,
so a fresh clone gets those versions and not whatever was released since.
``setup.cfg`` keeps the open ranges for people who install mentorgym as a
library. Local version labels are dropped (``torch==2.13.0+cpu`` is written
``torch==2.13.0``), so the same file serves CPU and CUDA builds.

    python scripts/lock.py            # write constraints.txt from .venv
    python scripts/lock.py --check    # exit 1, with the differences, when they disagree

To move to newer releases, ``make lock-upgrade`` (see README: upgrade,
test, then this script writes the file).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
PROJECT = "mentorgym"
HEADER = """\
# The exact versions `make test` passes on, for reproducible installs (pip install -c).
# Written by `python scripts/lock.py` from .venv; `make lock-upgrade` moves to newer releases.
# setup.cfg keeps the open version ranges for library users. Do not edit by hand.
"""
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_from_freeze(text: str) -> dict[str, str]:
    """{name: version} from ``pip freeze`` output, without the project, editable installs,
    comments, or local version labels."""
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        match = _PIN.match(line)
        if not match or _canonical(match.group(1)) == PROJECT:
            continue  # comments, -e lines, "name @ url" lines, the project itself
        pins[match.group(1)] = match.group(2).split("+", 1)[0]
    return pins


def render(pins: dict[str, str]) -> str:
    lines = [f"{name}=={pins[name]}" for name in sorted(pins, key=_canonical)]
    return HEADER + "\n".join(lines) + "\n"


def read_constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    return pins_from_freeze(path.read_text()) if path.exists() else {}


def installed_pins(python: str = sys.executable) -> dict[str, str]:
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return pins_from_freeze(freeze)


def differences(wanted: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package whose pinned and installed versions differ."""
    want = {_canonical(name): (name, version) for name, version in wanted.items()}
    have = {_canonical(name): (name, version) for name, version in installed.items()}
    lines = []
    for key in sorted(set(want) | set(have)):
        name = (want.get(key) or have[key])[0]
        pinned, current = want.get(key, (name, None))[1], have.get(key, (name, None))[1]
        if pinned != current:
            lines.append(
                f"{name}: constraints {pinned or '(absent)'}, installed {current or '(absent)'}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 on a difference"
    )
    parser.add_argument(
        "--python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="the environment's interpreter (default: .venv/bin/python)",
    )
    parser.add_argument(
        "--constraints", type=Path, default=CONSTRAINTS, help="the file to write or check"
    )
    args = parser.parse_args(argv)
    if not Path(args.python).exists():
        print(f"error: no interpreter at {args.python}; run `make venv` first", file=sys.stderr)
        return 2
    installed = installed_pins(args.python)
    if args.check:
        lines = differences(read_constraints(args.constraints), installed)
        for line in lines:
            print(line)
        if lines:
            print(
                f"{len(lines)} package(s) differ from {args.constraints}: run `python "
                "scripts/lock.py` after the suite passed, or reinstall with `make venv`",
                file=sys.stderr,
            )
        return 1 if lines else 0
    args.constraints.write_text(render(installed))
    print(f"wrote {args.constraints} ({len(installed)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
