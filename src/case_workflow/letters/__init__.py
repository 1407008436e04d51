"""Building blocks of formal letters: context, dates, sandbox, static checks and PDF output.

The public entry point is :mod:`case_workflow.notifications`; the modules here are private.
"""
