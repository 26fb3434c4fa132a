"""The README's Python blocks run as written, each on its own (a reader may start at any)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_each_on_its_own() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespaces = []
    for block in blocks:
        namespace: dict = {"__name__": "readme"}  # fresh: no block may lean on an earlier one
        exec(compile(block, "README.md", "exec"), namespace)
        namespaces.append(namespace)
    assert namespaces[0]["info"]["won"]
