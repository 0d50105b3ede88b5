"""Shared-inbox triage bot."""

__version__ = "0.1.0"
