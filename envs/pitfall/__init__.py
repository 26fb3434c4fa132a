"""Pitfall-v0: a controlled long-horizon env where off-path states need one recovery move.

``dynamics`` holds the rules and the episode contexts, ``env`` the text env
(``Pitfall-v0``), ``vector`` the same dynamics over many episodes at once in
numpy (for experiments with thousands of episodes; a test checks that the two
agree step by step).
"""
