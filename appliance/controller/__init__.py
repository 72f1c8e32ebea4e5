"""The controller process: the only code that drives the pump and valve."""
