"""computegrid.scheduling.plugins."""
