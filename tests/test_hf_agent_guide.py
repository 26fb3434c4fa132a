"""docs/agents.md names real options (its blocks run in tests/test_docs_snippets.py)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "agents.md"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_agents_guide_names_real_options(capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(GUIDE.parents[1] / "tools"))
    import benchmark
    import serve

    text = GUIDE.read_text()
    for module in (benchmark, serve):
        with pytest.raises(SystemExit):
            module.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in (
        "--trajectories",
        "--trajectory-ids",
        "--agent-kwargs",
        "--batch",
        "--port",
        "--host",
    ):
        assert flag in text and flag in help_text
