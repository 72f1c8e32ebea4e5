"""Build logic of the appliance image that is worth testing apart from the slow build itself."""
