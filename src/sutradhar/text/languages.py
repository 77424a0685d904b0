"""The languages the agent speaks.

`LANGUAGES` is the registry: one entry per BCP-47 code with its phrases and the instruction
that tells the LLM which language to answer in (voices belong to each TTS vendor's module).
Adding a language is adding an entry here and, where a vendor needs one, a voice there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str  # English name
    native_name: str
    script: str  # Unicode script the language is written in: Latin, Devanagari, Telugu, Gujarati, ...
    instruction: str  # appended to the system prompt
    greeting: str
    not_heard: str  # STT failed or heard nothing
    trouble: str  # the LLM failed
    goodbye: str
    drained: str  # the server is restarting and the call must end now
    transfer: str  # before handing the call to a human
    switched: str  # confirms a language change
    nothing_to_repeat: str
    menu_item: str  # one IVR line; {digit} is replaced
    recording_notice: str  # said before the greeting when RECORD_CALLS is on (consent)
    filler: str  # said once while a slow tool runs
    tool_failed: str  # a tool timed out or failed and no LLM could phrase it
    voicemail: str  # left on an answering machine when the agent file has no message of its own
    menu_intro: str = ""


LANGUAGES: dict[str, LanguageInfo] = {
    info.code: info
    for info in (
        LanguageInfo(
            code="en-IN", name="English", native_name="English", script="Latin",
            instruction="Always reply in English.",
            greeting="Hello! How can I help you today?",
            not_heard="Sorry, I didn't catch that. Could you say it again?",
            trouble="Sorry, I'm having some trouble right now. Please ask me again in a moment.",
            goodbye="Thank you for calling. Goodbye!",
            drained="I'm sorry, I have to end this call now. Please call again in a minute. Goodbye!",
            transfer="Please hold while I connect you to a person.",
            switched="Okay, I will speak in English from now on.",
            nothing_to_repeat="I haven't said anything yet. How can I help you?",
            menu_item="For English, press {digit}.",
            recording_notice="This call is recorded for quality and training.",
            filler="One moment, let me check.",
            tool_failed="Sorry, I couldn't look that up right now. Please try again in a little while.",
            voicemail="Hello, we called to speak with you. We will call you again later. Thank you.",
            menu_intro="Welcome.",
        ),
        LanguageInfo(
            code="hi-IN", name="Hindi", native_name="हिंदी", script="Devanagari",
            instruction="Always reply in Hindi, written in Devanagari script (हिंदी में जवाब दें).",
            greeting="नमस्ते! मैं आपकी क्या मदद कर सकता हूँ?",
            not_heard="माफ़ कीजिए, मैं समझ नहीं पाया। क्या आप दोबारा कह सकते हैं?",
            trouble="माफ़ कीजिए, अभी थोड़ी दिक्कत हो रही है। कृपया थोड़ी देर बाद फिर से पूछें।",
            goodbye="कॉल करने के लिए धन्यवाद। नमस्ते!",
            drained="माफ़ कीजिए, मुझे अब यह कॉल समाप्त करनी होगी। कृपया एक मिनट बाद फिर से कॉल करें। नमस्ते!",
            transfer="कृपया रुकिए, मैं आपको एक सहायक से जोड़ रहा हूँ।",
            switched="ठीक है, अब मैं हिंदी में बात करूँगा।",
            nothing_to_repeat="मैंने अभी तक कुछ नहीं कहा है। मैं आपकी क्या मदद कर सकता हूँ?",
            menu_item="हिंदी के लिए {digit} दबाएँ।",
            recording_notice="गुणवत्ता और प्रशिक्षण के लिए यह कॉल रिकॉर्ड की जा रही है।",
            filler="एक मिनट, मैं देखता हूँ।",
            tool_failed="माफ़ कीजिए, मैं अभी यह जानकारी नहीं देख पाया। कृपया थोड़ी देर बाद फिर से कोशिश करें।",
            voicemail="नमस्ते, हमने आपसे बात करने के लिए कॉल किया था। हम बाद में फिर से कॉल करेंगे। धन्यवाद।",
        ),
        LanguageInfo(
            code="te-IN", name="Telugu", native_name="తెలుగు", script="Telugu",
            instruction="Always reply in Telugu, written in Telugu script (తెలుగులో సమాధానం ఇవ్వండి).",
            greeting="నమస్కారం! నేను మీకు ఎలా సహాయం చేయగలను?",
            not_heard="క్షమించండి, నాకు అర్థం కాలేదు. దయచేసి మళ్ళీ చెప్పగలరా?",
            trouble="క్షమించండి, ప్రస్తుతం కొంచెం సమస్య ఉంది. దయచేసి కొద్దిసేపటి తర్వాత మళ్ళీ అడగండి.",
            goodbye="కాల్ చేసినందుకు ధన్యవాదాలు. నమస్కారం!",
            drained="క్షమించండి, నేను ఇప్పుడు ఈ కాల్‌ను ముగించాలి. దయచేసి ఒక నిమిషం తర్వాత మళ్ళీ కాల్ చేయండి. నమస్కారం!",
            transfer="దయచేసి వేచి ఉండండి, మిమ్మల్ని ఒక ప్రతినిధికి కలుపుతున్నాను.",
            switched="సరే, ఇప్పటి నుండి తెలుగులో మాట్లాడతాను.",
            nothing_to_repeat="నేను ఇంకా ఏమీ చెప్పలేదు. మీకు ఎలా సహాయం చేయగలను?",
            menu_item="తెలుగు కోసం {digit} నొక్కండి.",
            recording_notice="నాణ్యత మరియు శిక్షణ కోసం ఈ కాల్ రికార్డ్ చేయబడుతోంది.",
            filler="ఒక్క నిమిషం, నేను చూస్తాను.",
            tool_failed="క్షమించండి, ప్రస్తుతం ఆ వివరాలు చూడలేకపోయాను. దయచేసి కొద్దిసేపటి తర్వాత మళ్ళీ ప్రయత్నించండి.",
            voicemail="నమస్కారం, మీతో మాట్లాడటానికి మేము కాల్ చేసాము. మేము తర్వాత మళ్ళీ కాల్ చేస్తాము. ధన్యవాదాలు.",
        ),
        LanguageInfo(
            code="gu-IN", name="Gujarati", native_name="ગુજરાતી", script="Gujarati",
            instruction="Always reply in Gujarati, written in Gujarati script (ગુજરાતીમાં જવાબ આપો).",
            greeting="નમસ્તે! હું તમારી શું મદદ કરી શકું?",
            not_heard="માફ કરશો, મને સમજાયું નહીં. કૃપા કરીને ફરીથી કહેશો?",
            trouble="માફ કરશો, અત્યારે થોડી તકલીફ છે. કૃપા કરીને થોડી વાર પછી ફરી પૂછો.",
            goodbye="કૉલ કરવા બદલ આભાર. આવજો!",
            drained="માફ કરશો, મારે હવે આ કૉલ સમાપ્ત કરવો પડશે. કૃપા કરીને એક મિનિટ પછી ફરી કૉલ કરો. આવજો!",
            transfer="કૃપા કરીને રાહ જુઓ, હું તમને પ્રતિનિધિ સાથે જોડું છું.",
            switched="સારું, હવેથી હું ગુજરાતીમાં વાત કરીશ.",
            nothing_to_repeat="મેં હજી કંઈ કહ્યું નથી. હું તમારી શું મદદ કરી શકું?",
            menu_item="ગુજરાતી માટે {digit} દબાવો.",
            recording_notice="ગુણવત્તા અને તાલીમ માટે આ કૉલ રેકોર્ડ કરવામાં આવી રહ્યો છે.",
            filler="એક મિનિટ, હું તપાસું છું.",
            tool_failed="માફ કરશો, હું અત્યારે એ માહિતી જોઈ શક્યો નહીં. કૃપા કરીને થોડી વાર પછી ફરી પ્રયાસ કરો.",
            voicemail="નમસ્તે, અમે તમારી સાથે વાત કરવા માટે કૉલ કર્યો હતો. અમે પછીથી ફરી કૉલ કરીશું. આભાર.",
        ),
    )
}


def language_info(code: str) -> LanguageInfo:
    try:
        return LANGUAGES[code]
    except KeyError:
        raise KeyError(f"unknown language {code!r}; known: {', '.join(sorted(LANGUAGES))}") from None
