"""dlt's settings for leadferry's runs (leadferry.destination)."""

from __future__ import annotations

import dlt

from leadferry.destination import configure_dlt


def test_dlt_reads_its_settings_from_the_environment_at_each_lookup(settings, monkeypatch):
    configure_dlt(settings)
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "123")
    assert int(dlt.config["data_writer.buffer_max_items"]) == 123
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "456")
    assert int(dlt.config["data_writer.buffer_max_items"]) == 456


def test_dlt_still_reads_secrets_from_the_environment(settings, monkeypatch):
    configure_dlt(settings)
    configure_dlt(settings)  # a second run's set-up keeps the one provider
    monkeypatch.setenv("SOURCES__ACME__API_TOKEN", "first-token")
    assert dlt.secrets["sources.acme.api_token"] == "first-token"
    monkeypatch.setenv("SOURCES__ACME__API_TOKEN", "second-token")
    assert dlt.secrets["sources.acme.api_token"] == "second-token"
