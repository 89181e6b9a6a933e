"""Policy: what agents may do, and the audit log of what they did."""
