import pytest

from server.safety.words import MAX_WORD_CHARS, WordMatcher, clean_words, normalise


@pytest.mark.parametrize(
    "dodge",
    [
        "Bad Word",
        "b a d w o r d",
        "ＢＡＤ－ＷＯＲＤ",
        "bAd.w_o*r!d",
        "ｂａｄ　ｗｏｒｄ",
    ],
)
def test_a_listed_word_is_found_however_it_is_dodged(dodge: str) -> None:
    matcher = WordMatcher(["bad word", "other"])
    assert matcher.find(f"well, {dodge} here") == "bad word"


def test_chinese_words_with_punctuation_and_full_width_spaces_between_them() -> None:
    matcher = WordMatcher(["赌博", "色情"])
    assert matcher.find("一起来 赌，博 吧") == "赌博"
    assert matcher.find("一起来赌　博吧") == "赌博"
    assert matcher.find("今天天气不错") is None


def test_many_words_one_pass() -> None:
    words = [f"word{n:05d}" for n in range(5000)]
    matcher = WordMatcher(words)
    assert matcher.find("nothing listed") is None
    assert matcher.find("... W O R D 0 4 9 9 9 ...") == "word04999"


def test_an_empty_list_matches_nothing() -> None:
    assert WordMatcher([]).find("anything") is None


def test_normalise_keeps_letters_and_digits_only() -> None:
    assert normalise("Ａ-1 b\u3000c！") == "a1bc"


def test_clean_words_drops_blanks_and_repeats_in_any_form() -> None:
    assert clean_words([" spam ", "", "SPAM", "ｓｐａｍ", "eggs"]) == ["spam", "eggs"]


def test_clean_words_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_WORD_CHARS} characters"):
        clean_words(["x" * (MAX_WORD_CHARS + 1)])
    with pytest.raises(ValueError, match="no letter or digit"):
        clean_words(["- -"])
