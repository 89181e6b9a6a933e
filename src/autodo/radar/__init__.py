"""The feedback radar: what users say, grouped, ranked and turned into tasks."""
