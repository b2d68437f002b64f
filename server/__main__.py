"""`python -m server` is the `wxgpt` command."""

from server.cli import main

main()
