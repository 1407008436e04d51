"""Escalation reports: the value types, the SQL aggregation and the renderers behind ``reports``.

Import the public names from :mod:`case_workflow.reports`; the modules of this package are its
implementation.
"""
