"""Login throttling: too many failed logins for a user name, or from an address, lock it."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.support import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = settings.DASHBOARD_LOGIN_FAILURE_LIMIT


def log_in(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


async def test_after_n_failures_even_the_right_password_is_refused(async_client, admin_user):
    """Through the ASGI handler, as daphne runs it (axes' middleware takes its async path)."""

    async def log_in_async(password: str):
        return await async_client.post("/accounts/login/", {"username": "admin", "password": password})

    for _ in range(LIMIT - 1):
        response = await log_in_async("wrong-password")
        assert response.status_code == 200  # the form again: user name and password did not match
    assert (await log_in_async("wrong-password")).status_code == 429  # locked from the Nth on
    refused = await log_in_async(PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "/accounts/login/" in (await async_client.get("/")).headers["Location"]  # not logged in

    from axes.utils import reset

    await sync_to_async(reset)(username="admin")  # an admin lifts the lock (Admin > Axes)
    assert (await log_in_async(PASSWORD)).status_code == 302


def test_a_locked_user_name_is_locked_from_every_address(client, admin_user):
    for n in range(LIMIT):
        log_in(client, "admin", "wrong-password", address=f"192.0.2.{n + 1}")
    assert log_in(client, "admin", PASSWORD, address="198.51.100.1").status_code == 429


def test_an_address_with_n_failures_is_locked_for_every_user_name(client, admin_user):
    for n in range(LIMIT):
        log_in(client, f"nobody{n}", "guess", address="192.0.2.9")
    locked = log_in(client, "admin", PASSWORD, address="192.0.2.9")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert log_in(client, "admin", PASSWORD, address="192.0.2.10").status_code == 302


def test_a_successful_login_resets_the_count(client, admin_user):
    for _ in range(LIMIT - 1):
        assert log_in(client, "admin", "wrong-password").status_code == 200
    assert log_in(client, "admin", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(LIMIT - 1):
        assert log_in(client, "admin", "wrong-password").status_code == 200
    assert log_in(client, "admin", PASSWORD).status_code == 302
