"""The gateway: wires channels, the intake engine and storage together (app, CLI, workers)."""
