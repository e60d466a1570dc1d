"""Duty roster: who is on duty for a township or county at a given time."""
