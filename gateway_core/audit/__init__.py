"""The audit log: every decision and every call outcome, in a SQLite file.

``AuditLog`` writes (one thread, group commit); ``read_records`` reads without writing (the CLI);
``summarize_arguments`` is the redacted argument summary each record carries.
"""

from __future__ import annotations

from gateway_core.audit.log import AuditedCall, AuditLog
from gateway_core.audit.records import AuditQuery, AuditRecord, AuditStatus, CallOutcome, RecordKind, new_call_id
from gateway_core.audit.store import read_records
from gateway_core.audit.summary import summarize_arguments

__all__ = [
    "AuditLog",
    "AuditedCall",
    "AuditQuery",
    "AuditRecord",
    "AuditStatus",
    "CallOutcome",
    "RecordKind",
    "new_call_id",
    "read_records",
    "summarize_arguments",
]
