"""Every shipped panel is well-formed and names tasks its env can play."""

from __future__ import annotations

import collections

import gymnasium as gym
import pytest

import envs  # noqa: F401
from envs.panels import list_panels, load_panel
from envs.registration import ENV_ENTRIES


def test_every_registered_id_has_exactly_one_default_panel() -> None:
    defaults = collections.Counter(p.env_id for p in list_panels() if p.default)
    for entry in ENV_ENTRIES:
        assert defaults[entry.id] == 1, f"{entry.id} has {defaults[entry.id]} default panels"
    # The docs promise the held-out ALFWorld split is the default everywhere.
    assert load_panel("ALFWorld-v0").name == "valid_unseen-v1"


def test_panels_belong_to_registered_ids_and_are_stored_where_they_say() -> None:
    registered = {entry.id for entry in ENV_ENTRIES}
    for panel in list_panels():
        assert panel.env_id in registered, panel.name
        assert load_panel(panel.env_id, panel.name) == panel
        assert panel.task_ids, panel.name


@pytest.mark.parametrize("entry", ENV_ENTRIES, ids=[e.id for e in ENV_ENTRIES])
def test_panel_task_ids_are_in_their_split(entry, request) -> None:
    if "java" in entry.needs:
        from tests.conftest import HAS_JAVA

        if not HAS_JAVA:
            pytest.skip("needs a Java runtime")
    for panel in list_panels(entry.id):
        env = gym.make(entry.id, split=panel.split, admissible_actions="none")
        try:
            known = set(env.unwrapped.task_ids)
            missing = [t for t in panel.task_ids if t not in known]
            assert not missing, f"{panel.name}: not in split {panel.split}: {missing[:5]}"
        finally:
            env.close()


def test_unknown_panel_names_the_known_ones() -> None:
    entry = ENV_ENTRIES[0]
    with pytest.raises(FileNotFoundError, match="known panels"):
        load_panel(entry.id, "no-such-panel")


def test_a_mistyped_panel_name_gets_a_did_you_mean() -> None:
    from envs.panels import PanelNotFound

    with pytest.raises(PanelNotFound, match="did you mean 'valid_unseen-v1'"):
        load_panel("ALFWorld-v0", "valid_unseen-v2")
