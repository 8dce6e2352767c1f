"""Insights and the feedback export (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from core.auth import Actor, require
from core.config import Settings
from core.db.insights import feedback_rows, report
from core.db.session import Database
from core.records import Report, to_csv, to_jsonl
from core.vocab import Role


class InsightsService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    def report(self, *, since: datetime | None, actor: Actor) -> Report:
        require(actor, Role.admin)
        with self.db.session() as s:
            return report(s, self.settings.workspace, since=since)

    def export_feedback(
        self, fmt: Literal["csv", "jsonl"], *, since: datetime | None, actor: Actor
    ) -> str:
        """Every feedback row with its question and answer, as CSV or JSON Lines text."""
        require(actor, Role.admin)
        with self.db.session() as s:
            rows = feedback_rows(s, self.settings.workspace, since=since)
        return to_csv(rows) if fmt == "csv" else to_jsonl(rows)
