"""View-models: UI state as observable properties and the actions the widgets call."""
