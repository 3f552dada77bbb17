"""Connecting IDE clients to Toolgate and importing their servers."""
