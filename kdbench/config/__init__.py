"""Benchmark definition (TOML + flags), the plan of jobs, and the pre-flight checks run before any training."""
