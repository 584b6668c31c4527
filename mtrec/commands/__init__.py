"""`mtrec` subcommands other than `run` (which stays in mtrec/cli.py)."""
