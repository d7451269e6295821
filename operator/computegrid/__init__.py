"""computegrid: one place to submit work across the clusters of China's national compute hubs.

Layers import one way (enforced by import-linter, see ``.importlinter``)::

    api -> scheduling (pure) -> fleet_data -> fleet | dispatch | testbed | sim -> handlers -> cli
"""

__version__ = "0.1.0"
