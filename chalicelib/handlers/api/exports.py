"""Exports routes (issue 13)."""
from __future__ import annotations

from chalice import Blueprint

bp = Blueprint(__name__)
