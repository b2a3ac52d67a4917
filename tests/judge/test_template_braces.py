"""Placeholders are filled in one pass: literal ``{question}``/``{answer_1}``/``{answer_2}`` in a conversation stay.

Regression: the qlora-eval style filled its placeholders with one ``str.replace`` after another, so a literal
``{question}`` in an earlier turn (code, say) was replaced by the question, and ``{answer_1}``/``{answer_2}`` in the
question or in answer 1 by the answers.
"""

from __future__ import annotations

import pytest

from qlora_eval.judge.templates import JudgeTemplate, TemplateStyle, conversation_block, load_templates
from qlora_eval.types import Message, Prompt, Role

# Template hashes of the shipped v2 templates: stored judgments keep their keys only while these stay the same.
SHIPPED = {
    "general": "0b858dd0d082177abf066a6588791bb2df3cf75d452a5794cd58110321b3e1bd",
    "coding": "902d964bf2fa666b25b9a6bffce6798c2ec008dada4f84985c8feef6a9714e23",
    "math": "35acf0daf695771c00b81cf8baed12fc4b0a5b97e0b3bfe8a55e1358446c90fd",
}
CODE = 'def fill(t):\n    return t.format(question="{question}", a="{answer_1}", b="{answer_2}", c="{conversation}")'
OA = Prompt(
    prompt_set="oa",
    prompt_id="7",
    turns=(
        Message(Role.USER, f"Why does this print braces?\n```python\n{CODE}\n```"),
        Message(Role.ASSISTANT, "Because `{question}` inside a string is a literal, not a field."),
        Message(Role.USER, "And what does '{answer_1} vs {answer_2}' print?"),
    ),
    category="coding",
)
ANSWER_1 = "It prints `{answer_1} vs {answer_2}` verbatim; `{question}` too."
ANSWER_2 = "Literally: {answer_1} vs {answer_2}"


def _chained_replace(template: JudgeTemplate, prompt: Prompt, answer_1: str, answer_2: str) -> str:
    """The renderer as it was (one str.replace after another): the reference for text without literal braces."""
    text = template.user.replace("{conversation}", conversation_block(prompt.turns[:-1]))
    text = text.replace("{question}", prompt.question)
    return text.replace("{answer_1}", answer_1.strip()).replace("{answer_2}", answer_2.strip())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_literal_placeholders_in_the_conversation_are_kept_verbatim(name: str) -> None:
    template = load_templates().templates[name]
    system, user = template.render_prompt(OA, ANSWER_1, ANSWER_2)
    assert user.content.count(CODE) == 1  # the earlier turn's code, braces and all
    assert "`{question}` inside a string is a literal" in user.content
    assert "And what does '{answer_1} vs {answer_2}' print?" in user.content
    assert ANSWER_1 in user.content and ANSWER_2 in user.content
    # Each answer appears exactly once: nothing was substituted into the question or answer 1.
    assert user.content.count("It prints `") == 1 and user.content.count("Literally: ") == 1
    assert user.content != _chained_replace(template, OA, ANSWER_1, ANSWER_2)  # the old renderer mangled it
    assert system.role is Role.SYSTEM


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_text_without_literal_placeholders_renders_as_before_and_hashes_stay(name: str) -> None:
    template = load_templates().templates[name]
    assert template.sha256 == SHIPPED[name]
    plain = Prompt(
        prompt_set="oa",
        prompt_id="8",
        turns=(
            Message(Role.USER, "Write code with {braces} and a dict {'a': 1}."),
            Message(Role.ASSISTANT, "```\nx = {'a': 1}\n```"),
            Message(Role.USER, "Now in {json}?"),
        ),
        category="coding",
    )
    (_, user) = template.render_prompt(plain, ' {"a": 1} ', "{x}\n")
    assert user.content == _chained_replace(template, plain, ' {"a": 1} ', "{x}\n")


def test_paper_style_is_str_format_and_keeps_literal_placeholders() -> None:
    user = "[Question]\n{question}\n\n[The Start of Assistant 1's Answer]\n{answer_1}\n\n{answer_2}\n{prompt}\n"
    template = JudgeTemplate("general", 1, "h", "sys", user, TemplateStyle.QLORA_PAPER, {"prompt": "Rate them."})
    (_, rendered) = template.render_prompt(OA, ANSWER_1, ANSWER_2)
    expected = user.format(
        question=conversation_block(OA.turns[:-1]) + OA.question, answer_1=ANSWER_1, answer_2=ANSWER_2,
        prompt="Rate them.",
    )  # fmt: skip
    assert rendered.content == expected and CODE in rendered.content and ANSWER_2 in rendered.content
