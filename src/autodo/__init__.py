"""autodo: the to-do list that does itself."""

__version__ = "0.1.0"
