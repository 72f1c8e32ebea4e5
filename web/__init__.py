"""Touchscreen UI: presentation only, talks to the controller over IPC and to storage through appliance."""
