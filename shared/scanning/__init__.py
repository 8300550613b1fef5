"""Image scanning: sources -> layers -> analyzers -> inventory."""
