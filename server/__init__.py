"""Aidline: the backend of a city's social-assistance fingertip services (指尖办)."""
