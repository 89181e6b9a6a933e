"""Tools the built-in agents call inside a task workspace (files and shell)."""
