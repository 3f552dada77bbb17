"""The built-in catalogue of well-known MCP servers: kept in ``gateway_core.catalogue`` (the CLI uses it too)."""

from gateway_core.catalogue import CatalogueError, CatalogueItem, Input, catalogue_file, load_catalogue

__all__ = ["CatalogueError", "CatalogueItem", "Input", "catalogue_file", "load_catalogue"]
