"""The OSTAF method: regions, hypernetwork, offsets, tuning."""
