"""computegrid.sim."""
