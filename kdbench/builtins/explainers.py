"""Built-in explainers (filled in by the explainers issue)."""
