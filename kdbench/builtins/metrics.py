"""Built-in metrics (filled in by the explainers issue)."""
