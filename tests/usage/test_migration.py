"""UsageRecord moved from the inference app to usage/ without touching its table or its rows."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from usage.models import UsageRecord


@pytest.mark.django_db(transaction=True)
def test_rows_and_content_type_survive_the_move_to_the_usage_app():
    executor = MigrationExecutor(connection)
    executor.migrate([("usage", None)])  # back to before the move (inference 0004 goes too)
    old = executor.loader.project_state([("inference", "0003_usagerecord")]).apps
    user = old.get_model("accounts", "User").objects.create(username="old", email="old@example.com")
    row = old.get_model("inference", "UsageRecord").objects.create(
        user=user, model="m", endpoint="chat.completions", status_code=200, prompt_tokens=7, request_id="before"
    )
    ContentType.objects.filter(app_label="usage", model="usagerecord").delete()
    old_type = ContentType.objects.get_or_create(app_label="inference", model="usagerecord")[0]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = UsageRecord.objects.get(pk=row.pk)
    assert (moved.request_id, moved.prompt_tokens, moved.user_id) == ("before", 7, user.pk)
    assert UsageRecord._meta.db_table == "inference_usagerecord"
    assert ContentType.objects.get(pk=old_type.pk).app_label == "usage"  # permissions and admin log follow
