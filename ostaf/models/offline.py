"""Keep diffusers and transformers quiet (the app reports its own progress). The offline
environment itself is set when the `ostaf` package is imported, before either library."""

from __future__ import annotations


def quiet_libraries() -> None:
    """Turn off the libraries' own progress bars (safe to call many times)."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
