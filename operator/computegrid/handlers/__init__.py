"""Kopf handlers wiring fleet, scheduling and dispatch; no business logic of their own.

``computegrid.handlers.operator`` holds every ``@kopf.on.*``; importing it registers them.
"""
