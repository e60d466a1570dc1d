"""Cases: urgent requests and applications, their timeline, documents and workflow."""
