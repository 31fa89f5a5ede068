"""``python -m paycore``: the same as the ``paycore`` command."""

from paycore.cli import main

main()
