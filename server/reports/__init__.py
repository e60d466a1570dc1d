"""Supervisors' reports: the case ledger (台账) and the dashboard's figures, as tables that the
API, the console pages and the .xlsx/CSV exports share."""
