from __future__ import annotations

import json

from django.forms.models import model_to_dict

from audit.models import AuditEvent


def only_event(**filters) -> AuditEvent:
    """The one event matching `filters` (fails when there are none or several)."""
    events = list(AuditEvent.objects.filter(**filters))
    assert len(events) == 1, [(event.action, event.target_repr) for event in AuditEvent.objects.all()]
    return events[0]


def stored_text(event: AuditEvent) -> str:
    """Everything stored in the row, as one string (to look for secrets in)."""
    return json.dumps(model_to_dict(event), default=str)
