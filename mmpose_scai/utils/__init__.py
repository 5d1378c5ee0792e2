"""Utilities of the plugin."""
