"""mentorgym distillation layer (SFT, OPD, Guided-OPD, TCOD, MENTOR); see spec/algorithms.md."""
