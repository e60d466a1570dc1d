"""Import every model so Base.metadata is complete (Alembic, tests)."""

from notifications.models import (  # noqa: F401
    CallbackTask,
    SmsAttempt,
    SmsInbound,
    SmsOutbox,
    SmsReceipt,
    SmsTemplateOverride,
)
from server.accounts.models import Account, AuthSession, RefreshToken, SignInCode  # noqa: F401
from server.audit import AuditEntry  # noqa: F401
from server.cases.models import CaseCounter, CaseEvent, IdempotencyKey  # noqa: F401
from server.cases.workflow_models import AidStandard, CalendarOverride, Escalation  # noqa: F401
from server.db import Base  # noqa: F401
from server.divisions.models import Division  # noqa: F401
from server.documents.models import CaseDocument  # noqa: F401
from server.roster.models import DutyShift  # noqa: F401
