"""Keep the cached API-key entries honest: any change to a key, its owner or their plan drops them."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts import services
from accounts.models import ApiKey, IpRule, Organization, Plan, User

# Saves that change nothing auth reads (Django's login writes last_login).
_IRRELEVANT_USER_FIELDS = frozenset({"last_login"})


@receiver(post_save, sender=User)
def _user_saved(sender, instance: User, created: bool, update_fields=None, raw: bool = False, **kwargs) -> None:
    if created or raw or (update_fields is not None and set(update_fields) <= _IRRELEVANT_USER_FIELDS):
        return
    services.api_key_cache_forget_for_users(user_ids=[instance.pk])
    # set_password() leaves the raw password in _password until save() has run its validators.
    password_changed = getattr(instance, "_password", None) is not None
    if password_changed:
        services.user_auth_epoch_raise(user=instance)  # ends access tokens issued before
    if password_changed or not instance.is_active:
        services.user_tokens_revoke(user=instance)


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _key_changed(sender, instance: ApiKey, **kwargs) -> None:
    services.api_key_cache_forget(digests=[instance.digest])


@receiver(post_save, sender=Plan)
@receiver(post_delete, sender=Plan)
def _plan_changed(sender, instance: Plan, **kwargs) -> None:
    services.api_key_cache_forget_for_plan(plan=instance)


@receiver(post_save, sender=Organization)
def _organization_changed(sender, instance: Organization, created: bool, raw: bool = False, **kwargs) -> None:
    if not created and not raw:  # its plan or budget may have changed: both are cached with its keys
        services.api_key_cache_forget_for_organization(organization=instance)


@receiver(post_save, sender=IpRule)
@receiver(post_delete, sender=IpRule)
def _ip_rule_changed(sender, instance: IpRule, **kwargs) -> None:
    from accounts.ip_rules import ip_rules_forget

    ip_rules_forget()
