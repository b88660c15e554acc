"""Who is asking for an inference: the user, the key they used, and the plan that governs them."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import ApiKey, Plan, User


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user, the key they used (None for session users) and their plan."""

    user: User
    api_key: ApiKey | None
    plan: Plan | None

    @classmethod
    def for_key(cls, api_key: ApiKey) -> Caller:
        return cls(user=api_key.user, api_key=api_key, plan=api_key.user.plan)

    def may_use(self, model_name: str) -> bool:
        if self.api_key is not None and not self.api_key.allows_model(model_name):
            return False
        return self.plan is None or self.plan.allows_model(model_name)

    @classmethod
    def for_user(cls, user: User) -> Caller:
        """A signed-in person without a key (the playground)."""
        return cls(user=user, api_key=None, plan=user.plan)
