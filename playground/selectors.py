"""Reads for the playground. Every query is scoped to its owner: another user's id raises DoesNotExist."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from playground.models import Conversation, Message


def conversations_for_user(*, user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user).order_by("-updated_at", "-id")


def conversation_for_user(*, user: User, conversation_id: int) -> Conversation:
    """The user's own conversation; raises Conversation.DoesNotExist for anyone else's (404, not 403)."""
    return Conversation.objects.get(user=user, pk=conversation_id)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("created_at", "id")


def conversation_as_dict(*, conversation: Conversation) -> dict:
    """What the page needs to reopen a conversation (passed to the JS through json_script)."""
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.model,
        "mode": conversation.mode,
        "system": conversation.system_prompt,
        "params": conversation.params,
        "messages": [
            {
                "role": message.role,
                "content": message.content,
                "completion_tokens": message.completion_tokens,
                "tokens_per_s": message.tokens_per_s,
                "finish_reason": message.finish_reason,
            }
            for message in conversation_messages(conversation=conversation)
        ],
    }
