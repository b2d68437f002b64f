from storage.settings import get_settings, set_settings


async def test_settings_are_upserted_and_read_by_prefix(db: str) -> None:
    await set_settings({"generation.temperature": 0.5, "generation.top_k": 10, "other": [1, 2]})
    await set_settings({"generation.temperature": 0.0, "flags": {"beta": True}})
    await set_settings({})
    assert await get_settings("generation.") == {
        "generation.temperature": 0.0,
        "generation.top_k": 10,
    }
    assert await get_settings() == {
        "generation.temperature": 0.0,
        "generation.top_k": 10,
        "other": [1, 2],
        "flags": {"beta": True},
    }


async def test_a_prefix_is_matched_literally(db: str) -> None:
    await set_settings({"a_b": 1, "axb": 2, "a%c": 3})
    assert await get_settings("a_") == {"a_b": 1}
    assert await get_settings("a%") == {"a%c": 3}
