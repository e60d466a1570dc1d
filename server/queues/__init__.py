"""Township queues, county triage queues, and the supervisors' SLA report."""
