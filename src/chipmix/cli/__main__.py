"""``python -m chipmix.cli`` (used under ``torchrun -m chipmix.cli bench``)."""

from chipmix.cli.commands import main

main()
