"""The headless command line (`python -m ostaf`)."""
