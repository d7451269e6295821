"""Kopf handlers wiring fleet, scheduling and dispatch; no business logic of their own.

``computegrid.handlers.operator`` holds every ``@kopf.on.*``; importing it registers them.
"""

import sys

# Kopf imports the ``kubernetes`` and ``pykube`` client libraries, when installed, to
# recognise their model objects and to offer their logins as fallbacks; this operator hands
# Kopf no such object and logs in by its own handler. That import was a sixth of the
# operator's start-up CPU (0.4-0.7 of 3 CPU-seconds, measured with /usr/bin/time) and 9 MB:
# hide them while Kopf is imported and its default registry made. Where something imported
# them already (a test process), nothing changes.
_HIDDEN = [
    name for name in ("kubernetes", "kubernetes_asyncio", "pykube") if name not in sys.modules
]
for _name in _HIDDEN:
    sys.modules[_name] = None  # type: ignore[assignment]  # an import of it raises ImportError
try:
    import kopf

    kopf.get_default_registry()
finally:
    for _name in _HIDDEN:
        if sys.modules.get(_name) is None:
            del sys.modules[_name]
