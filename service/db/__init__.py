"""The case database: models, engines and sessions, migrations."""

from service.db.models import (AuditEntry, Base, Camera, Case, CaseViolation, Evidence, Flight, OutboxMessage,
                               UTCDateTime)
from service.db.session import (DatabaseSettings, create_schema, make_engine, make_session_factory,
                                upgrade_schema)

__all__ = ["AuditEntry", "Base", "Camera", "Case", "CaseViolation", "DatabaseSettings", "Evidence",
           "Flight", "OutboxMessage", "UTCDateTime", "create_schema", "make_engine", "make_session_factory",
           "upgrade_schema"]
