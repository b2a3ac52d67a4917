"""Run the vLLM backend on SmolLM2 and print the answers as JSON (run by test_vllm.py in the vLLM venv).

Usage: python tests/models/vllm_smoke.py SPEC
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from qlora_eval.models.spec import parse_model_spec
from qlora_eval.models.vllm_backend import VLLMChatModel
from qlora_eval.types import GenerationSettings, Message, Role


def main() -> None:
    # Eager mode and one process: torch.compile and the engine/worker processes (each importing vLLM
    # again) would add minutes of start-up on a 2-core CI machine.
    model = VLLMChatModel(parse_model_spec(sys.argv[1]), enforce_eager=True, distributed_executor_backend="uni")
    prompts = [
        [Message(Role.USER, "What is the capital of France?")],
        [Message(Role.USER, "Which planet is closest to the Sun?")],
    ]
    greedy = model.generate(prompts, GenerationSettings(do_sample=False, max_new_tokens=16))
    sampled = model.generate(prompts, GenerationSettings(seed=5, max_new_tokens=16))
    sampled_again = model.generate(prompts[::-1], GenerationSettings(seed=5, max_new_tokens=16))[::-1]
    print(
        "RESULT "
        + json.dumps(
            {
                "greedy": [c.text for c in greedy],
                "tokens": [c.completion_tokens for c in greedy],
                "sampled": [c.text for c in sampled],
                "sampled_again": [c.text for c in sampled_again],
            }
        )
    )
    model.close()


if __name__ == "__main__":
    main()
