"""The pipeline's stages: one thin script each, run as ``python -m stages.<name>``."""
