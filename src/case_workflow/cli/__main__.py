"""Run the command line with ``python -m case_workflow.cli``."""

from case_workflow.cli import main

main()
