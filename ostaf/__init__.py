"""OSTAF core: one-shot attribute tuning for Stable Diffusion, with no Qt.

Importing this package is cheap: torch and diffusers load only when a module that needs
them is imported.
"""

__version__ = "0.1.0"
