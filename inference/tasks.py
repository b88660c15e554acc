"""Native tasks built on the models: generate, ask, classify. Plain async functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from inference import services
from inference.engine.types import GenerationRequest, SamplingParams

ASK_SYSTEM_PROMPT = (
    "You answer questions accurately and concisely. When a context is given, answer from it, "
    "and say so when the context does not contain the answer."
)
PromptCheck = Callable[[int], None] | None  # the meter's plan cap on prompt tokens

# Similarity differences between labels are small; a low temperature turns them into clear scores.
CLASSIFY_TEMPERATURE = 0.05


async def generate(
    *, model: str, prompt: str, max_tokens: int, temperature: float, raw: bool, check_prompt: PromptCheck = None
):
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature)
    if raw:
        request = GenerationRequest(params=params, prompt=prompt)
    else:
        request = GenerationRequest(params=params, messages=({"role": "user", "content": prompt},))
    generation, choices = await services.generation_run(model=model, request=request, n=1, check_prompt=check_prompt)
    text, finish_reason = choices[0]
    return {
        "text": text,
        "model": model,
        "finish_reason": finish_reason,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.total_completion_tokens,
    }


async def ask(*, model: str, question: str, context: str, max_tokens: int, check_prompt: PromptCheck = None):
    user_message = f"Context:\n{context}\n\nQuestion: {question}" if context else question
    request = GenerationRequest(
        params=SamplingParams(max_tokens=max_tokens, temperature=0.0),
        messages=({"role": "system", "content": ASK_SYSTEM_PROMPT}, {"role": "user", "content": user_message}),
    )
    generation, choices = await services.generation_run(model=model, request=request, n=1, check_prompt=check_prompt)
    return {
        "answer": choices[0][0].strip(),
        "model": model,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.total_completion_tokens,
    }


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of the angle between two vectors; 0 when either is all zeros."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def label_scores(similarities: list[float], *, multi_label: bool) -> list[float]:
    """Single-label: a softmax over labels (scores sum to 1). Multi-label: each label on its own, 0..1."""
    if multi_label:
        return [max(0.0, min(1.0, similarity)) for similarity in similarities]
    scaled = [similarity / CLASSIFY_TEMPERATURE for similarity in similarities]
    top = max(scaled)
    exps = [math.exp(value - top) for value in scaled]
    total = sum(exps)
    return [value / total for value in exps]


async def classify(*, model: str, text: str, labels: list[str], hypothesis_template: str, multi_label: bool):
    """Zero-shot classification: similarity of the text to one hypothesis sentence per label."""
    # Only the literal `{}` is replaced: str.format would let `{0:>200000}` build huge strings.
    hypotheses = [hypothesis_template.replace("{}", label) for label in labels]
    result = await services.embeddings_create(model=model, texts=[text, *hypotheses])
    text_vector, label_vectors = result.vectors[0], result.vectors[1:]
    scores = label_scores([cosine_similarity(text_vector, vector) for vector in label_vectors], multi_label=multi_label)
    ranked = sorted(zip(labels, scores, strict=True), key=lambda pair: pair[1], reverse=True)
    return {
        "label": ranked[0][0],
        "scores": [{"label": label, "score": round(score, 6)} for label, score in ranked],
        "model": model,
        "prompt_tokens": result.prompt_tokens,
    }
