"""leadferry: lead-management and call-tracking data, kept fresh in your own warehouse."""

__version__ = "0.1.0"
