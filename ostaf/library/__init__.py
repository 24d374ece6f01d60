"""The library on disk: projects, attribute files, atomic writes."""
