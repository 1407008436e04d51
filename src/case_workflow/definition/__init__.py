"""Workflow definitions: YAML reader, pydantic model, static checks and loader."""
