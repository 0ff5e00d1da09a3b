"""Leaderboards from stored rows: tables, rendering (Markdown, LaTeX, HTML, CSV, JSON), plots, figures, summary."""
