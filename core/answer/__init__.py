"""Answering: retrieval chain, generators, citations and the calibrated confidence."""
