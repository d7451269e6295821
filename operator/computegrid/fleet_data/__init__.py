"""computegrid.fleet_data."""
