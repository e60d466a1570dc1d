"""The web and CLI side of the SMS subsystem (webhooks, operations); logic in notifications/."""
