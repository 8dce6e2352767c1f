"""Loupe\x27s engine: everything that is not UI, importable and testable without Streamlit."""
