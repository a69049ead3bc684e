"""Make the default models ready to load: convert SmolLM2 once, check MiniLM. Idempotent."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from personalization.backends.base import BackendError
from personalization.backends.convert import check_minilm, prepare_smollm2


class Command(BaseCommand):
    help = "Convert the shipped default generator to a Hugging Face folder (once) and check the embedding model."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--models-dir", help="Where converted models go (default: settings.ATTUNE_MODELS_DIR)")

    def handle(self, *args: object, **options: object) -> None:
        models_dir = Path(str(options.get("models_dir") or settings.ATTUNE_MODELS_DIR))
        try:
            generator = prepare_smollm2(models_dir)
            embedder = check_minilm()
        except BackendError as exc:
            raise CommandError(str(exc)) from exc
        for result in (generator, embedder):
            self.stdout.write(f"{result.name}: {result.action} in {result.seconds:.1f} s ({result.folder})")
