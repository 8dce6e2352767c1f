"""The small services behind the `Loupe` facade, one per concern: documents, asking,
feedback and review, insights. Each takes its components explicitly, so it can be tested alone."""
