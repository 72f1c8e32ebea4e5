"""CLI commands: each module here exposes `register(subparsers)` and is found automatically."""
