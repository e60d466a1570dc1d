"""Accounts: residents (phone + SMS code) and staff (password), tokens, roles, scopes."""
