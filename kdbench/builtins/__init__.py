"""kdbench's own components, registered through the public hooks like any plugin."""
