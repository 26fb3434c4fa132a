"""A reproducible small-scale study of the distillation methods (``tools/study.py``)."""
