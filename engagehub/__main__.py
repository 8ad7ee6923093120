"""``python -m engagehub`` runs the CLI."""

from engagehub.cli import main

main()
