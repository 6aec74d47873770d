"""The commands of `referrals`, a module for each kind of thing they act on; cli/main.py adds
them to the app. Each command imports what it uses when it runs: at module level only typer,
cli/shared.py and the ORM-free models (bounds, lifecycle, roles), so `referrals --help` stays fast.
"""
