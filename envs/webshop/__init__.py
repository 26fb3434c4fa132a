"""WebShop-v0: a pure-Python reimplementation of WebShop's text environment.

See ``docs/webshop.md``. The env lives in :mod:`envs.webshop.env`; the
catalogue and loaders in :mod:`envs.webshop.catalogue`; the reward in
:mod:`envs.webshop.reward`; page rendering in :mod:`envs.webshop.pages`.
"""

from __future__ import annotations

from envs.webshop.catalogue import Catalogue, CatalogueError, Goal, Product, get_catalogue
from envs.webshop.env import WebShopEnv
from envs.webshop.reward import purchase_reward

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Goal",
    "Product",
    "WebShopEnv",
    "get_catalogue",
    "purchase_reward",
]
