"""What the CLI, the REST API and the web pages do, once: thin front ends call these.

Each function takes the store (and settings or ``now`` where it needs them), validates its input
with :class:`~leadferry.errors.ConfigError` messages that name the field, and returns records or
plain JSON-ready dicts. Prompting, HTTP and rendering stay in the front ends.
"""
