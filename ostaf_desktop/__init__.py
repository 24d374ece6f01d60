"""OSTAF Desktop: the Qt application over the `ostaf` core."""
