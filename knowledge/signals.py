"""sqlite-vec into every SQLite connection; a base's or document's vectors leave the vector index
with it, however it is deleted (services, the admin, a user's account deletion cascading)."""

from __future__ import annotations

import logging

from django.db.backends.signals import connection_created
from django.db.models import F
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from knowledge.models import Document, KnowledgeBase

logger = logging.getLogger(__name__)


@receiver(connection_created, dispatch_uid="knowledge-sqlite-vec")
def load_sqlite_vec(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    loaded = False
    if hasattr(raw, "enable_load_extension"):
        try:
            import sqlite_vec

            raw.enable_load_extension(True)
            try:
                sqlite_vec.load(raw)
                loaded = True
            finally:
                raw.enable_load_extension(False)
        except Exception as exc:  # the extension file missing or not loadable on this platform
            logger.warning("sqlite-vec cannot be loaded (%s); knowledge bases use exact numpy search", exc)
    connection.knowledge_sqlite_vec = loaded


@receiver(pre_delete, sender=KnowledgeBase, dispatch_uid="knowledge-base-vectors")
def remove_base_vectors(sender, instance: KnowledgeBase, using: str, **kwargs) -> None:
    from knowledge.vector_index import current_index

    current_index(using).remove(knowledge_base_id=instance.pk, dimensions=instance.dimensions)


@receiver(pre_delete, sender=Document, dispatch_uid="knowledge-document-vectors")
def remove_document_vectors(sender, instance: Document, using: str, **kwargs) -> None:
    from knowledge.models import Chunk
    from knowledge.vector_index import current_index

    base = KnowledgeBase.objects.using(using).filter(pk=instance.knowledge_base_id).first()
    if base is None:
        return  # the base is going too: its pre_delete removed every vector
    chunk_ids = list(Chunk.objects.using(using).filter(document=instance).values_list("id", flat=True))
    if chunk_ids:
        current_index(using).remove(knowledge_base_id=base.pk, dimensions=base.dimensions, chunk_ids=chunk_ids)
        KnowledgeBase.objects.using(using).filter(pk=base.pk).update(version=F("version") + 1)
