"""Generation engine: make models answer prompt sets into the store, resumably."""

from qlora_eval.generate.runner import GenerationReport, generate_answers

__all__ = ["GenerationReport", "generate_answers"]
