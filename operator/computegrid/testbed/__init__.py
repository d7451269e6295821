"""computegrid.testbed."""
