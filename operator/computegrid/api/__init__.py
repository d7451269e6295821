"""computegrid.api."""
