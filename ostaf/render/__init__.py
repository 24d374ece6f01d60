"""Rendering with attributes, batch export, contact sheets, recall."""
