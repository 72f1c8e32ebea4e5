"""Clinic records in SQLite under the data directory: schema, rows, pressure trace, audit trail."""

from appliance.store.db import DB_NAME, DEFAULT_DATA_DIR, Store, StoreError, open_store

__all__ = ["DB_NAME", "DEFAULT_DATA_DIR", "Store", "StoreError", "open_store"]
