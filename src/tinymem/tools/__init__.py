"""Command-line tools (``python -m tinymem.tools.<name>``)."""
