from sutradhar.text.langid import (
    detect_text_language,
    dominant_script,
    resolve_language,
)

ALL = ("te-IN", "hi-IN", "en-IN", "gu-IN")


def test_native_scripts_decide():
    assert detect_text_language("मेरा ऑर्डर कहाँ है", ALL) == "hi-IN"
    assert detect_text_language("నా ఆర్డర్ ఎక్కడ ఉంది", ALL) == "te-IN"
    assert detect_text_language("મારો ઓર્ડર ક્યાં છે", ALL) == "gu-IN"
    assert detect_text_language("where is my order", ALL) == "en-IN"


def test_romanized_hindi_is_hindi():
    assert detect_text_language("mera order kahan hai bhai", ALL) == "hi-IN"
    assert detect_text_language("mujhe aapki madad chahiye", ALL) == "hi-IN"


def test_text_outranks_a_wrong_stt_language():
    assert resolve_language("en-IN", "मेरा ऑर्डर कहाँ है", ALL) == "hi-IN"
    assert resolve_language(None, "నా ఆర్డర్ ఎక్కడ ఉంది", ALL) == "te-IN"
    assert resolve_language("hi-IN", "नमस्ते", ALL) == "hi-IN"
    assert resolve_language("gu-IN", "", ALL) == "gu-IN"


def test_dominant_script():
    assert dominant_script("OK, ठीक है") == "Devanagari"
    assert dominant_script("123 !!") is None
