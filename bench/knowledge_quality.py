"""Knowledge base quality on the labelled set (tests/knowledge/quality_set.py), with the default
models, through the portal's own ingestion, search and /api/v1/ask grounding code:

- retrieval hit@1 / hit@3: the expected passage is in the first / first three chunks found;
- answers with the fact: /api/v1/ask's grounded answer (default chat model, greedy, 64 tokens)
  contains the expected fact; also how often it answered at all (found relevant passages).

    .venv/bin/python bench/knowledge_quality.py            # ~2 min on 2 cores; prints Markdown

Runs on a throw-away SQLite database in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--passages", type=int, default=3)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="kb-quality-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/db.sqlite3"
    os.environ["BATCH_RUNNER"] = "off"
    import django
    from asgiref.sync import sync_to_async

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts import services as account_services
    from accounts.caller import Caller
    from batches import services as file_services
    from knowledge import retrieval, services
    from knowledge.ingest import document_ingest
    from knowledge.selectors import unfinished_document_ids
    from knowledge.vector_index import current_index
    from tests.knowledge.quality_set import DOCUMENTS, QUESTIONS
    from usage.metering import metered

    user = account_services.user_signup(email="bench@example.com", password="bench-passphrase-123", verified=True)
    caller = Caller.for_user(user)
    base = services.knowledge_base_create(user=user, name="Northwind")
    for name, text in DOCUMENTS.items():
        file = file_services.file_create(user=user, filename=name, purpose="assistants", data=text.encode())
        services.knowledge_document_add(knowledge_base=base, file=file)

    async def run() -> None:
        started = time.perf_counter()
        for document_id in await sync_to_async(unfinished_document_ids)():
            await document_ingest(document_id=document_id)
        ingest_s = time.perf_counter() - started
        await base.arefresh_from_db()
        chunks = await base.chunks.acount()
        hit1 = hit3 = facts = answered = 0
        misses = []
        for item in QUESTIONS:
            async with metered("bench", caller=caller) as meter:
                results = await retrieval.search(
                    knowledge_base=base, caller=caller, query=item.question, limit=3, score_threshold=0.0, meter=meter
                )
            ranks = [
                i
                for i, r in enumerate(results, start=1)
                if r.chunk.document.filename == item.document and item.passage in r.chunk.text
            ]
            hit1 += bool(ranks and ranks[0] == 1)
            hit3 += bool(ranks)
            grounded = await retrieval.ask(
                knowledge_base=base,
                caller=caller,
                model=settings.DEFAULT_CHAT_MODEL,
                question=item.question,
                max_tokens=args.max_tokens,
                passages=args.passages,
            )
            answered += grounded.found
            has_fact = item.fact.lower() in grounded.answer.lower()
            facts += has_fact
            if not has_fact:
                misses.append((item.question, item.fact, grounded.answer.replace("\n", " ")[:160]))
        n = len(QUESTIONS)
        index_name = await sync_to_async(lambda: current_index().name)()
        print(f"### Knowledge bases: retrieval and grounded answers ({time.strftime('%Y-%m-%d')})\n")
        print(
            f"{len(DOCUMENTS)} documents -> {chunks} chunks (chunk {settings.KNOWLEDGE_CHUNK_CHARS} chars, overlap "
            f"{settings.KNOWLEDGE_CHUNK_OVERLAP}), {n} questions; embedding {base.embedding_model}, chat "
            f"{settings.DEFAULT_CHAT_MODEL} (greedy, {args.max_tokens} tokens, top {args.passages} passages); "
            f"index {index_name}; ingestion {ingest_s:.1f} s.\n"
        )
        print("| metric | value |\n| --- | ---: |")
        print(f"| retrieval hit@1 | {hit1 / n:.2f} ({hit1}/{n}) |")
        print(f"| retrieval hit@3 | {hit3 / n:.2f} ({hit3}/{n}) |")
        print(f"| answered (relevant passages found, score >= {settings.KNOWLEDGE_MIN_SCORE}) | {answered}/{n} |")
        print(f"| answers containing the expected fact | {facts / n:.2f} ({facts}/{n}) |")
        if misses:
            print("\nAnswers without the expected fact:\n")
            for question, fact, answer in misses:
                print(f"- {question} (expected `{fact}`): {answer}")

    asyncio.run(run())


if __name__ == "__main__":
    main()
