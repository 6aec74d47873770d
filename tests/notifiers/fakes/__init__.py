"""Loopback fakes of the gateways our Apprise plugins talk to (tests and benchmarks only)."""
