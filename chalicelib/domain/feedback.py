"""Post-project feedback: a 1-5 rating with a comment; it feeds the health score."""
from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib.domain.values import Record


class Feedback(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    rating: int = Field(ge=1, le=5)
    comment: str | None = None
    project_id: str | None = None
    created_by: str | None = None
    created_at: datetime
