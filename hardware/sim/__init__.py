"""Simulation side of the device boundary: the cuff plant and the wiring of emulated chips to it."""
