"""`python -m referrals.cli`: the same as the `referrals` command."""

from referrals.cli.main import main

main()
