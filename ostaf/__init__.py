"""OSTAF core: one-shot attribute tuning for Stable Diffusion, with no Qt.

Importing this package is cheap: torch and diffusers load only when a module that needs
them is imported. It does set the environment that keeps those libraries offline and quiet,
before any of them can be imported through the core.
"""

import os

__version__ = "0.1.0"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
