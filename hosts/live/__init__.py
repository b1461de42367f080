"""The live path: the events relay, its trackers, the hub, the scheduler that runs beside the
relay, and what pushes to browsers (old modules still at hosts/relay*.py, hub.py ...)."""
