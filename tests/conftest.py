"""Shared by unit and integration tests: this folder on sys.path, for the case loaders here."""
