"""The HTTP API (`/api/v1`): dependencies, authentication, schemas and one router per resource.

Built by `service.app.create_app(settings)`; nothing here creates state at import.
"""
