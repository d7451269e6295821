"""computegrid.fleet."""
