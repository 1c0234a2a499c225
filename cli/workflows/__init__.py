"""Multi-stage workflows the CLI runs (demos)."""
