"""Join packaged model parts into usable model files (filled in by the providers work)."""
