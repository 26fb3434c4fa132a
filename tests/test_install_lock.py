"""constraints.txt: the exact versions the suite passes on, used by the install, upgradable."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402

FREEZE = """\
absl-py==2.5.1
# Editable Git install with no remote (mentorgym==0.1.0)
-e /work/main
mentorgym==0.1.0
torch==2.13.0+cpu
some_pkg @ file:///tmp/some_pkg
Jinja2==3.1.6
"""


def test_the_constraints_are_what_this_environment_runs() -> None:
    """The suite that is running passes on exactly these versions (else: scripts/lock.py)."""
    assert lock.differences(lock.read_constraints(), lock.installed_pins(sys.executable)) == []


def test_every_dependency_in_setup_cfg_is_pinned_within_its_range() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].split("\n")
    for extra in ("test", "plot", "lora", "tracking"):  # the extras scripts/ensure_venv.sh installs
        lines += parser["options.extras_require"][extra].split("\n")
    pins = {lock._canonical(n): v for n, v in lock.read_constraints().items()}
    for line in filter(None, (line.split("#")[0].strip() for line in lines)):
        requirement = Requirement(line)
        version = pins.get(lock._canonical(requirement.name))
        assert version is not None, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(version, prereleases=True), (line, version)
    assert pins["torch"] == "2.13.0"


def test_a_freeze_becomes_pins_without_the_project_urls_or_local_labels() -> None:
    pins = lock.pins_from_freeze(FREEZE)
    assert pins == {"absl-py": "2.5.1", "torch": "2.13.0", "Jinja2": "3.1.6"}
    text = lock.render(pins)
    assert text.startswith("# The exact versions")
    assert text.splitlines()[-3:] == ["absl-py==2.5.1", "Jinja2==3.1.6", "torch==2.13.0"]


def fake_python(tmp_path: Path, freeze: str) -> str:
    """An 'interpreter' whose `-m pip freeze` prints ``freeze`` (an environment after an upgrade)."""
    script = tmp_path / "python"
    (tmp_path / "freeze.txt").write_text(freeze)
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'freeze.txt'}\n")
    script.chmod(0o755)
    return str(script)


def test_upgrading_writes_the_new_versions_and_check_reports_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    constraints = tmp_path / "constraints.txt"
    python = fake_python(tmp_path, FREEZE)
    assert lock.main(["--python", python, "--constraints", str(constraints)]) == 0
    assert lock.main(["--check", "--python", python, "--constraints", str(constraints)]) == 0
    (tmp_path / "freeze.txt").write_text(FREEZE.replace("Jinja2==3.1.6", "Jinja2==3.2.0"))
    assert lock.main(["--check", "--python", python, "--constraints", str(constraints)]) == 1
    assert "Jinja2: constraints 3.1.6, installed 3.2.0" in capsys.readouterr().out
    assert lock.main(["--python", python, "--constraints", str(constraints)]) == 0  # re-lock
    assert "Jinja2==3.2.0" in constraints.read_text()


def test_the_install_commands_use_the_constraints() -> None:
    script = (ROOT / "scripts" / "ensure_venv.sh").read_text()
    installs = [line for line in script.splitlines() if "pip_quiet install" in line]
    project = [line for line in installs if "-e " in line or " torch" in line]
    assert len(project) == 2 and all("-c constraints.txt" in line for line in project)
    makefile = (ROOT / "Makefile").read_text()
    upgrade = makefile.split("lock-upgrade: venv", 1)[1].split("\n\n", 1)[0]
    assert upgrade.index("$(MAKE) test") < upgrade.index("scripts/lock.py")  # lock only if green
