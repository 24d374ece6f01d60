"""Base models: loading, single-file checkpoints, devices, the demo model."""
