"""computegrid.handlers."""
