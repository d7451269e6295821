"""computegrid.dispatch."""
