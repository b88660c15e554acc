from __future__ import annotations

from django.contrib import admin

from playground.models import Conversation, Message

MESSAGE_FIELDS = (
    "role",
    "content",
    "prompt_tokens",
    "completion_tokens",
    "tokens_per_s",
    "finish_reason",
    "created_at",
)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = MESSAGE_FIELDS
    readonly_fields = MESSAGE_FIELDS


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "model", "mode", "updated_at"]
    list_filter = ["mode", "model"]
    list_select_related = ["user"]
    search_fields = ["title", "user__email"]
    raw_id_fields = ["user"]
    inlines = [MessageInline]
