"""Shared by the tests: the checkout's root, the domain and pages driven as users do, receivers."""

from pathlib import Path

# The checkout (pyproject.toml, deploy/, benchmarks/, referrals/), wherever a test file sits.
ROOT = Path(__file__).resolve().parents[2]
