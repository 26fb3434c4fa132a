"""Shared pytest fixtures and markers."""

from __future__ import annotations

import os
import shutil
import tempfile

# Tests never reach the Hugging Face hub: every model and tokenizer is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# ALFWorld's translations go to a cache of this test process (removed when it ends), not
# the user's ~/.cache.
os.environ["MENTORGYM_ALFWORLD_TRANSLATIONS"] = tempfile.mkdtemp(prefix="mentorgym-test-tr-")
# What runs build once (embedded teachers) goes to a cache of this test process too.
os.environ["MENTORGYM_CACHE"] = tempfile.mkdtemp(prefix="mentorgym-test-cache-")

import pytest

import envs  # noqa: F401  (registers every id)
from envs.registration import ENV_ENTRIES

HAS_JAVA = shutil.which("java") is not None


def pytest_unconfigure(config) -> None:
    shutil.rmtree(os.environ["MENTORGYM_ALFWORLD_TRANSLATIONS"], ignore_errors=True)
    shutil.rmtree(os.environ["MENTORGYM_CACHE"], ignore_errors=True)


def entry_params() -> list:
    """One pytest param per registered id, marked with what it needs."""
    params = []
    for entry in ENV_ENTRIES:
        marks = []
        if "java" in entry.needs:
            marks += [
                pytest.mark.java,
                pytest.mark.skipif(not HAS_JAVA, reason="needs a Java runtime"),
            ]
        params.append(pytest.param(entry.id, marks=marks, id=entry.id))
    return params


@pytest.fixture
def one_torch_thread():
    """Run a model test on one torch thread: the machine is shared, and one thread per
    test process avoids oversubscription stalls (results do not depend on it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
