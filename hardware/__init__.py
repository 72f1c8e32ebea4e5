"""Device boundary: ports, the real Pi drivers behind them, and their emulators."""
