"""Who is asking for an inference: the user, the key they used, and the plan that governs them."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import ApiKey, Organization, Plan, User


def builtin_default_plan() -> Plan:
    """The model's default limits, unsaved: what governs a user when no plan can be found at all
    (no plan of their own and no default plan in the database). Limits fail closed."""
    return Plan(name="Default")


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user, the key they used (None for session users) and the plan that
    governs them. There is always a plan: a user without one is under the default plan (loaders
    put it on `user.plan`, see accounts.selectors.user_with_plan); never "no limits"."""

    user: User
    api_key: ApiKey | None
    plan: Plan
    # An organization's key: the organization is billed (its plan, limits and budgets) and `user`,
    # the member who created the key, is who the usage is attributed to.
    organization: Organization | None = None

    @classmethod
    def for_key(cls, api_key: ApiKey) -> Caller:
        """Loaders put the governing plan on `organization.plan` (an organization's key) or on
        `user.plan`, the default plan when there is none (accounts.services._key_from_entry)."""
        if api_key.organization_id is not None:
            organization = api_key.organization
            assert organization is not None
            return cls(
                user=api_key.user,
                api_key=api_key,
                plan=organization.plan or builtin_default_plan(),
                organization=organization,
            )
        return cls(user=api_key.user, api_key=api_key, plan=api_key.user.plan or builtin_default_plan())

    @property
    def organization_id(self) -> int | None:
        return self.organization.pk if self.organization is not None else None

    def may_use(self, model_name: str) -> bool:
        if self.api_key is not None and not self.api_key.allows_model(model_name):
            return False
        return self.plan.allows_model(model_name)

    @classmethod
    def for_user(cls, user: User) -> Caller:
        """A signed-in person without a key (the playground)."""
        return cls(user=user, api_key=None, plan=user.plan or builtin_default_plan())
