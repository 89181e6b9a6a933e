"""Task workspaces: the directory tree an agent works in for one task."""
