"""Tasks: lanes, states, dependencies and triage."""
