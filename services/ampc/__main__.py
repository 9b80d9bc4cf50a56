"""`python -m ampc` is the same as the `ampc` command."""

from ampc.cli import main

main()
