"""Smoke: the workflow end to end through the API."""

from __future__ import annotations

from tests.integration.controlplane.conftest import Api


def test_submit_and_approve(api: Api, gpus: None) -> None:
    created = api.submit()
    assert created["status"] == "pending"
    response = api.approve(created["id"], comment="ok")
    assert response.status_code == 200, response.text
    assert response.json()["tenant"]["status"] == "provisioning"
