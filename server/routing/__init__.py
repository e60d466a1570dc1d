"""Routing: which queue a new case lands in (pure functions over a gazetteer)."""
