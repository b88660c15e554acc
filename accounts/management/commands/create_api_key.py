from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.exceptions import ApiKeyLimitReached
from accounts.models import User


class Command(BaseCommand):
    help = "Issue an API key for USERNAME and print it once (it can't be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, username: str, name: str, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}.") from exc
        try:
            _, raw_key = services.api_key_create(user=user, name=name)
        except (ApiKeyLimitReached, ValidationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(raw_key)
