"""Acme CRM for leadferry: :mod:`.connector` reads its API, :mod:`.simulator` serves one."""
