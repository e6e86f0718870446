"""The version of glm: one source, read by pyproject.toml and by `glm --version`."""

__version__ = "0.1.0"
