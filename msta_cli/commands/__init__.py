"""Thin Typer commands over msta_cli.core."""
