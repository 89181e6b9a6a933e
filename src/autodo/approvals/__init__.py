"""Approvals: actions a profile's rules hold until the person allows them."""
