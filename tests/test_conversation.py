"""Multi-turn conversations: tiers change turn by turn, the history never gets lost."""

from __future__ import annotations

from cascade import Cascade, InMemoryLedger, Tier
from cascade.conversation import Conversation
from cascade.providers.scripted import ScriptedProvider
from cascade.types import AttemptKind
from validators.text import length_between
from validators.text_contract import TextContract


def test_a_growing_conversation_moves_to_the_tier_that_can_hold_it() -> None:
    small = Tier("small", "scripted", "m-small", 0.1, 0.2, context_window=1100, max_tokens=1000)
    large = Tier("large", "scripted", "m-large", 1.0, 2.0, context_window=100_000, max_tokens=1000)
    provider = ScriptedProvider({"small": ["Hello! How can I help?"], "large": ["Here is a long summary."]})
    ledger = InMemoryLedger()
    engine = Cascade([small, large], providers={"scripted": provider}, ledger=ledger)
    chat = Conversation(engine, TextContract([length_between(1, 2000)]), system="Be brief.")

    chat.ask("Hi")
    chat.ask("Summarise this: " + "word " * 200)  # ~250 tokens more: past the small window
    assert chat.tiers_used == ["small", "large"]
    assert ledger.attempts()[1].kind is AttemptKind.SKIP and ledger.attempts()[1].tier == "small"
    sent = provider.requests[-1][1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2].content == "Hello! How can I help?"  # the large tier sees the small tier's answer
    assert [m.role for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
    engine.close()


async def test_the_async_turn_is_the_same() -> None:
    tier = Tier("only", "scripted", "m", 0.1, 0.2)
    async with Cascade([tier], providers={"scripted": ScriptedProvider({"only": ["a", "b"]})}) as engine:
        chat = Conversation(engine, TextContract([length_between(1, 10)]))
        await chat.aask("one")
        await chat.aask("two")
    assert [m.content for m in chat.messages] == ["one", "a", "two", "b"]
