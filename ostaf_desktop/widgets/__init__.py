"""Widgets: they lay out controls and bind them to view-models; state lives in the view-models."""
