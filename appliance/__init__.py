"""BFR appliance domain: control, safety, LOP, protocols, sessions, storage and the CLI."""

__version__ = "0.1.0"
