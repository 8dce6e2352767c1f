"""Ingestion: uploaded files become cited, searchable chunks."""
