"""Writes for the playground (conversations and their messages) and small pure helpers.

Keyword-only, typed, named `<entity>_<action>`; callers pass objects they already scoped to the
user through playground.selectors.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from inference.tasks import cosine_similarity
from playground.models import DEFAULT_TITLE, Conversation, Message

TITLE_MAX_CHARS = 60


def title_from_text(text: str) -> str:
    """A short title from the first user turn: its first line, cut at a word boundary."""
    line = " ".join(text.split())
    if not line:
        return DEFAULT_TITLE
    if len(line) <= TITLE_MAX_CHARS:
        return line
    cut = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0] or line[:TITLE_MAX_CHARS]
    return f"{cut}…"


def conversation_create(
    *,
    user: User,
    model: str,
    mode: str = Conversation.Mode.CHAT,
    system_prompt: str = "",
    params: dict | None = None,
    title: str = "",
) -> Conversation:
    now = timezone.now()
    return Conversation.objects.create(
        user=user,
        title=(title.strip() or DEFAULT_TITLE)[:200],
        model=model,
        mode=mode,
        system_prompt=system_prompt,
        params=params or {},
        created_at=now,
        updated_at=now,
    )


def conversation_update_settings(
    *, conversation: Conversation, model: str, mode: str, system_prompt: str, params: dict
) -> bool:
    """Remember the settings last used, so reopening shows what produced the latest reply.
    False when the conversation was deleted meanwhile."""
    changes = {
        "model": model,
        "mode": mode,
        "system_prompt": system_prompt,
        "params": params,
        "updated_at": timezone.now(),
    }
    for name, value in changes.items():
        setattr(conversation, name, value)
    return bool(Conversation.objects.filter(pk=conversation.pk).update(**changes))


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title:
        raise ValueError("A conversation needs a title.")
    conversation.title = title[:200]
    conversation.save(update_fields=["title"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def message_append(
    *,
    conversation: Conversation,
    role: str,
    content: str,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    tokens_per_s: float | None = None,
    finish_reason: str = "",
) -> Message | None:
    """Add a turn and bump the conversation. Returns None when the conversation was deleted meanwhile
    (e.g. from another tab while a reply was streaming)."""
    now = timezone.now()
    with transaction.atomic():
        touched = Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
        if not touched:
            return None
        if role == Message.Role.USER and conversation.title == DEFAULT_TITLE:
            title = title_from_text(content)
            Conversation.objects.filter(pk=conversation.pk, title=DEFAULT_TITLE).update(title=title)
            conversation.title = title
        conversation.updated_at = now
        return Message.objects.create(
            conversation=conversation,
            role=role,
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tokens_per_s=tokens_per_s,
            finish_reason=finish_reason,
            created_at=now,
        )


def cosine_similarity_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise cosine similarity, rounded to 4 places (a zero vector is similar to nothing)."""
    matrix: list[list[float]] = [[0.0] * len(vectors) for _ in vectors]
    for i, a in enumerate(vectors):
        for j in range(i, len(vectors)):
            matrix[i][j] = matrix[j][i] = round(cosine_similarity(a, vectors[j]), 4)
    return matrix
