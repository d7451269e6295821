"""computegrid.scheduling."""
