"""What expert feedback changes: verified answers (verified.py, matched with the guard in
questions.py), retrieval boosts (boosts.py), the shared state both are kept in (state.py) and
the datasets exported from reviews (exports.py)."""
