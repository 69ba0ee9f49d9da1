"""Add DataSet: the four panes (Credentials, Details, Scheduling, Name & Describe)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
