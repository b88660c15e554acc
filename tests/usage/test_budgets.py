"""Monthly token budgets (issue 13, part 2): per plan, per key and per organization; 429
insufficient_quota before admitting; alerts at 80 % and 100 % once per month, by e-mail and a
signed webhook; spend from model prices on the dashboards."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import org_services, services
from accounts.caller import Caller
from accounts.models import Membership
from tests.inference.helpers import call
from usage import budgets
from usage.metering import LimitExceeded, metered
from usage.models import BudgetAlert, ModelPrice, UsageRecord
from usage.recorder import UsageEvent, recorder


def set_budget(plan, tokens):
    plan.monthly_token_budget = tokens
    plan.save()  # drops the cached keys, which carry their plan


def usage(user, tokens, *, org=None, api_key=None, when=None, cached=False, model="m"):
    return UsageRecord.objects.create(
        user=user,
        organization=org,
        api_key=api_key,
        model=model,
        endpoint="chat.completions",
        status_code=200,
        prompt_tokens=tokens,
        cached=cached,
        created_at=when or timezone.now(),
    )


def record(user, tokens, *, org=None, api_key_id=None):
    """A finished request through the recorder, as metering writes it."""
    recorder().record(
        UsageEvent(
            user_id=user.pk,
            api_key_id=api_key_id,
            organization_id=None if org is None else org.pk,
            model="m",
            endpoint="chat.completions",
            status_code=200,
            prompt_tokens=tokens,
        )
    )
    recorder().flush()


def assert_insufficient_quota(result):
    assert result.status == 429
    error = result.json()["error"]
    assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
    assert 1 <= int(result.headers["retry-after"]) <= 31 * 86_400


def test_a_spent_plan_budget_refuses_with_insufficient_quota(owner, owner_key):
    set_budget(owner.plan, 100)
    usage(owner, 99)
    assert call("GET", "/v1/models", owner_key).status == 200
    cache.clear()
    usage(owner, 1)
    assert_insufficient_quota(call("GET", "/v1/models", owner_key))
    assert call("POST", "/api/v1/generate", owner_key, {"prompt": "Hi"}).status == 429  # the native tasks too


def test_last_months_tokens_and_cached_answers_do_not_count(owner, owner_key):
    set_budget(owner.plan, 100)
    first_of_month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    usage(owner, 500, when=first_of_month - timedelta(seconds=1))
    usage(owner, 500, cached=True)
    assert call("GET", "/v1/models", owner_key).status == 200


def test_a_key_budget_refuses_only_that_key(owner, owner_key):
    limited, limited_raw = services.api_key_create(user=owner, name="limited", monthly_token_budget=50)
    usage(owner, 50, api_key=limited)
    assert_insufficient_quota(call("GET", "/v1/models", limited_raw))
    assert call("GET", "/v1/models", owner_key).status == 200


def test_rotating_a_key_keeps_its_budget(owner):
    limited, _ = services.api_key_create(user=owner, name="limited", monthly_token_budget=50)
    rotated, _ = services.api_key_rotate(api_key=limited)
    assert rotated.monthly_token_budget == 50


def test_an_org_budget_counts_every_members_org_keys_but_not_their_own(owner, owner_key, other_user):
    org = org_services.organization_create(user=owner, name="Acme")
    Membership.objects.create(organization=org, user=other_user)
    org_services.organization_update(
        membership=Membership.objects.get(user=owner), name="Acme", monthly_token_budget=100, alert_webhook_url=""
    )
    _, owners_org_key = org_services.org_api_key_create(membership=Membership.objects.get(user=owner), name="a")
    _, members_org_key = org_services.org_api_key_create(membership=Membership.objects.get(user=other_user), name="b")
    usage(owner, 1000)  # personal: not the organization's
    usage(other_user, 60, org=org)
    assert call("GET", "/v1/models", owners_org_key).status == 200
    record(owner, 40, org=org)
    assert_insufficient_quota(call("GET", "/v1/models", members_org_key))
    assert_insufficient_quota(call("GET", "/v1/models", owners_org_key))
    assert call("GET", "/v1/models", owner_key).status == 200  # the owner's personal key is not the org's


def test_the_plan_budget_of_the_org_plan_governs_org_keys(owner):
    org = org_services.organization_create(user=owner, name="Acme")
    set_budget(owner.plan, 10)  # the default plan: also the organization's, which has none of its own
    usage(owner, 10, org=org)
    _, raw = org_services.org_api_key_create(membership=Membership.objects.get(user=owner), name="a")
    assert_insufficient_quota(call("GET", "/v1/models", raw))


def test_written_rows_grow_the_cached_total_and_admission_reads_only_the_cache(owner, django_assert_num_queries):
    subject = f"user:{owner.pk}"
    usage(owner, 5)
    assert budgets.month_totals([subject]) == {subject: 5}  # seeded from the rows
    record(owner, 7)
    with django_assert_num_queries(0):
        assert budgets.month_totals([subject]) == {subject: 12}


def test_a_prompt_that_would_exceed_the_budget_is_refused(owner):
    set_budget(owner.plan, 100)
    usage(owner, 90)
    caller = Caller.for_user(owner)
    caller.user.plan.monthly_token_budget = 100
    outcome = {}

    async def run():
        async with metered("test", caller=caller) as meter:
            await meter.admit()
            meter.check_prompt_tokens(5)
            try:
                meter.check_prompt_tokens(20)
            except LimitExceeded as exc:
                outcome["code"] = exc.code
                raise

    with pytest.raises(LimitExceeded):
        async_to_sync(run)()
    assert outcome == {"code": "insufficient_quota"}


def test_no_budget_means_no_budget_reads(owner, owner_key, monkeypatch):
    async def unexpected(subjects):
        raise AssertionError(f"read the totals of {subjects}")

    monkeypatch.setattr(budgets, "amonth_totals", unexpected)
    usage(owner, 10**9)
    assert call("GET", "/v1/models", owner_key).status == 200
    set_budget(owner.plan, 100)
    assert call("GET", "/v1/models", owner_key).status == 500  # the read happens once a budget is set


# --- alerts --------------------------------------------------------------------------------------


def test_alerts_are_sent_at_80_and_100_percent_once_per_month(owner):
    set_budget(owner.plan, 100)
    record(owner, 79)
    assert mail.outbox == []
    record(owner, 1)
    (first,) = mail.outbox
    assert first.to == [owner.email] and "80%" in first.subject
    record(owner, 5)
    assert len(mail.outbox) == 1
    record(owner, 15)
    assert len(mail.outbox) == 2 and "100%" in mail.outbox[1].subject
    assert "insufficient_quota" in mail.outbox[1].body
    record(owner, 50)
    assert len(mail.outbox) == 2
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [80, 100]


def test_an_alert_row_already_written_by_another_worker_is_not_sent_again(owner):
    set_budget(owner.plan, 100)
    period = budgets.period_of(timezone.now())
    BudgetAlert.objects.create(scope=f"user:{owner.pk}", period=period, threshold=80, tokens=80, budget=100)
    record(owner, 85)
    assert mail.outbox == []


def test_org_budget_alerts_go_to_owners_and_admins(owner, other_user):
    org = org_services.organization_create(user=owner, name="Acme")
    Membership.objects.create(organization=org, user=other_user, role=Membership.Role.MEMBER)
    org.monthly_token_budget = 10
    org.save()
    record(other_user, 10, org=org)
    assert {tuple(message.to) for message in mail.outbox} == {(owner.email,)}
    assert "Acme" in mail.outbox[0].subject


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # a local server stands in for the receiver
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_the_webhook_gets_a_signed_alert(owner, owner_client, webhook_server):
    url, received = webhook_server
    assert owner_client.post("/console/usage/alerts/", {"alert_webhook_url": url}).status_code == 302
    owner.refresh_from_db()
    assert owner.alert_webhook_secret
    set_budget(owner.plan, 100)
    record(owner, 80)
    ((headers, body),) = received
    expected = "sha256=" + hmac.new(owner.alert_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert {name.lower(): value for name, value in headers.items()}["x-llmos-signature"] == expected
    payload = json.loads(body)
    assert payload["type"] == "budget.threshold_reached"
    assert (payload["scope"], payload["scope_id"], payload["threshold_percent"]) == ("user", owner.pk, 80)
    assert (payload["tokens"], payload["budget"]) == (80, 100)


def test_a_failing_webhook_does_not_stop_metering(owner, caplog):
    owner.alert_webhook_url = "http://127.0.0.1:9/unreachable"
    owner.alert_webhook_secret = "s"
    owner.save()
    set_budget(owner.plan, 10)
    record(owner, 10)
    assert UsageRecord.objects.count() == 1 and len(mail.outbox) == 1  # 80 % and 100 % at once: one e-mail
    assert "100%" in mail.outbox[0].subject and "webhook" in caplog.text
    assert BudgetAlert.objects.count() == 2


# --- pages and API --------------------------------------------------------------------------------


def test_the_dashboard_shows_the_budget_and_spend(owner, owner_client):
    set_budget(owner.plan, 1000)
    ModelPrice.objects.create(model="priced", input_per_1k=Decimal("2"), output_per_1k=Decimal("4"))
    usage(owner, 500, model="priced")
    page = owner_client.get("/console/usage/").content.decode()
    assert "500 of 1000 tokens used (50 %)" in page
    assert '<td class="spend-total">1.0000</td>' in page
    data = APIClient()
    data.force_authenticate(owner)
    body = data.get("/api/usage/").json()
    assert body["budget"]["tokens"] == 500 and body["budget"]["budget"] == 1000
    assert body["spend_total"] == "1.0000" and body["spend"][0]["model"] == "priced"


def test_the_alerts_page_shows_the_budget_and_is_per_user(owner, owner_client, client, other_user):
    set_budget(owner.plan, 200)
    usage(owner, 50)
    page = owner_client.get("/console/usage/alerts/")
    assert page.status_code == 200 and b"50 of your 200" in page.content
    assert owner_client.post("/console/usage/alerts/", {"alert_webhook_url": "not a url"}).status_code == 400
    client.force_login(other_user)
    assert b"0 of your 200" in client.get("/console/usage/alerts/").content


def test_members_do_not_see_the_org_budget_but_managers_do(owner, other_user, client):
    org = org_services.organization_create(user=owner, name="Acme")
    Membership.objects.create(organization=org, user=other_user)
    org.monthly_token_budget = 100
    org.save()
    usage(owner, 30, org=org)
    client.force_login(other_user)
    assert b"of 100 tokens used" not in client.get(f"/console/usage/?org={org.pk}").content
    client.force_login(owner)
    assert b"30 of 100 tokens used" in client.get(f"/console/usage/?org={org.pk}").content


def test_a_webhook_into_the_servers_own_network_is_refused_in_production(owner, settings, webhook_server, caplog):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    url, received = webhook_server
    owner.alert_webhook_url, owner.alert_webhook_secret = url, "s"
    owner.save()
    set_budget(owner.plan, 10)
    record(owner, 10)
    assert received == [] and "not a public address" in caplog.text
    assert len(mail.outbox) == 1  # the e-mail still goes
    assert budgets.webhook_target_allowed("http://10.0.0.1/x") is False
