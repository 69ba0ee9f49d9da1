"""Add DataSet and Edit: the four panes of the seeds (Credentials, Details, Scheduling, Name &
Describe), in their order.

``routes`` holds the pages and their live HTMX parts; ``draft`` is what the panes hold between
requests (rebuilt from each post) and how it is checked and saved; ``controls`` turns the
panes' form controls into the domain's values (date selection, schedule, retries, update
method) and back.
"""

from __future__ import annotations

from leadferry.web.wizard.routes import router

__all__ = ["router"]
