"""Registers the job kinds whose steps need the tables (the schedules'), in every process that starts or runs jobs."""
from __future__ import annotations

from chalicelib.domain import schedule_cases
from chalicelib.tables.stores import Directory, Stores

schedule_cases.register(Directory(), Stores)
