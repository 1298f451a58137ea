"""Argos Translate packages, run with CTranslate2: installed offline, never downloaded at run time.

Packages (`.argosmodel` files: a zip of metadata.json, a CTranslate2 model in `model/` and a
SentencePiece or BPE tokenizer) are installed and read with argostranslate's own package code,
into `<data folder>/argos`; nothing is written to the home folder. Texts are translated with the
package's tokenizer and CTranslate2's `translate_batch`, one batch per language pair with every
sentence of every text in it, and through English where no direct package exists.

Sentences are split here, not by argostranslate: its splitters (Stanza, MiniSBD, spaCy) fetch
models or resource lists from the network when a package does not ship one, and the gateway
must work offline. Applicants write short messages; a split after sentence-final punctuation
(Latin, CJK, Arabic and Devanagari marks), with long runs cut at a space, serves them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from intake.translation import Translation, TranslationUnavailable

log = logging.getLogger(__name__)
ENGINE = "argostranslate"
PIVOT = "en"
DEFAULT_INDEX = "https://raw.githubusercontent.com/argosopentech/argospm-index/main/"
MAX_SENTENCE_CHARS = 400
MAX_DECODING_LENGTH = 256
CACHED_SENTENCES = 20_000
_SENTENCE_END = re.compile(r"(?<=[.!?…;؟।])\s+|(?<=[。！？；])")
_argos_lock = threading.Lock()


class PackageInvalid(ValueError):
    """A file that is not a usable Argos translation package; the message says why."""


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, none longer than MAX_SENTENCE_CHARS."""
    sentences: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph.strip()):
        while len(sentence) > MAX_SENTENCE_CHARS:
            cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
            cut = cut if cut > 0 else MAX_SENTENCE_CHARS
            sentences.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence.strip():
            sentences.append(sentence.strip())
    return sentences


# -- argostranslate, kept inside the data folder -----------------------------------------------


@contextlib.contextmanager
def argos_environment(argos_dir: Path) -> Iterator[ModuleType]:
    """argostranslate.package, with every folder it (and what it imports) uses under argos_dir.

    argostranslate reads its folders from the environment when first imported, and the
    libraries its installer imports write caches under XDG_CACHE_HOME, so the variables point
    into argos_dir while argostranslate runs; afterwards the environment is as it was.
    """
    argos_dir = argos_dir.resolve()
    variables = {"XDG_DATA_HOME": argos_dir / "data", "XDG_CONFIG_HOME": argos_dir / "config",
                 "XDG_CACHE_HOME": argos_dir / "cache",
                 "ARGOS_PACKAGES_DIR": argos_dir / "packages"}
    with _argos_lock:
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update({name: str(path) for name, path in variables.items()})
        try:
            from argostranslate import package, settings

            _point_settings_at(settings, argos_dir)
            yield package
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _point_settings_at(settings: Any, argos_dir: Path) -> None:
    """Re-point argostranslate's folders (read once at import) at this gateway's argos_dir."""
    settings.data_dir = argos_dir / "data" / "argos-translate"
    settings.config_dir = argos_dir / "config" / "argos-translate"
    settings.settings_file = settings.config_dir / "settings.json"
    settings.cache_dir = argos_dir / "cache" / "argos-translate"
    settings.downloads_dir = settings.cache_dir / "downloads"
    settings.package_data_dir = argos_dir / "packages"
    settings.package_dirs = [settings.package_data_dir]
    settings.local_package_index = settings.data_dir / "index.json"
    for folder in (settings.data_dir, settings.config_dir, settings.downloads_dir,
                   settings.package_data_dir):
        folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class ArgosPackage:
    """One installed translation package."""

    source: str
    target: str
    version: str
    path: Path
    package: Any  # argostranslate.package.Package: metadata and tokenizer

    @property
    def label(self) -> str:
        """"fr-en 1.9": the pair and version, as stored with each translation."""
        return f"{self.source}-{self.target} {self.version}".strip()


def installed_packages(argos_dir: Path) -> list[ArgosPackage]:
    """The installed translation packages, the newest version of each pair."""
    with argos_environment(argos_dir) as package_module:
        found = [p for p in package_module.get_installed_packages() if p.type == "translate"]
    newest: dict[tuple[str, str], ArgosPackage] = {}
    for pkg in sorted(found, key=lambda p: _version_key(p.package_version)):
        newest[(pkg.from_code, pkg.to_code)] = ArgosPackage(
            pkg.from_code, pkg.to_code, str(pkg.package_version), Path(pkg.package_path), pkg)
    return sorted(newest.values(), key=lambda p: (p.source, p.target))


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """"1.10" after "1.9"; parts that are not numbers sort after numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in str(version).split("."))


def check_package_file(path: Path) -> dict[str, Any]:
    """The metadata of a `.argosmodel` file, or PackageInvalid saying what is wrong with it."""
    if not zipfile.is_zipfile(path):
        raise PackageInvalid(f"{path}: not a zip archive")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        roots = {name.split("/", 1)[0] for name in names}
        if len(roots) != 1:
            raise PackageInvalid(f"{path}: expected one top-level folder, found {len(roots)}")
        root = roots.pop()
        try:
            metadata = json.loads(archive.read(f"{root}/metadata.json"))
        except (KeyError, ValueError) as error:
            raise PackageInvalid(f"{path}: no readable {root}/metadata.json ({error})") from error
    if not isinstance(metadata, dict) or not metadata.get("from_code") or \
            not metadata.get("to_code"):
        raise PackageInvalid(f"{path}: metadata.json needs from_code and to_code")
    if metadata.get("type", "translate") != "translate":
        raise PackageInvalid(f"{path}: a {metadata['type']!r} package, not a translation")
    if f"{root}/model/model.bin" not in names:
        raise PackageInvalid(f"{path}: no CTranslate2 model ({root}/model/model.bin)")
    if not {f"{root}/sentencepiece.model", f"{root}/bpe.model"} & set(names):
        raise PackageInvalid(f"{path}: no tokenizer (sentencepiece.model or bpe.model)")
    return metadata


def install_files(argos_dir: Path, files: Sequence[Path]) -> list[ArgosPackage]:
    """Install `.argosmodel` files (checked first); an older version of a pair is replaced."""
    pairs = []
    for path in files:
        metadata = check_package_file(path)
        with argos_environment(argos_dir) as package_module:
            package_module.install_from_path(path)
        pairs.append((metadata["from_code"], metadata["to_code"]))
    return _keep_newest(argos_dir, pairs)


def install_from_index(argos_dir: Path, source: str, target: str, index_url: str
                       ) -> list[ArgosPackage]:
    """Download and install source→target from the Argos package index, or the legs through
    English that are not installed yet when it has no direct package; the only download."""
    installed = {(p.source, p.target) for p in installed_packages(argos_dir)}
    with argos_environment(argos_dir) as package_module:
        from argostranslate import settings

        settings.package_index = index_url.rstrip("/") + "/"
        settings.remote_package_index = settings.package_index + "index.json"
        settings.local_package_index.unlink(missing_ok=True)
        package_module.update_package_index()
        if not settings.local_package_index.exists():
            raise PackageInvalid(f"cannot read the package index at "
                                 f"{settings.remote_package_index}")
        available = {(p.from_code, p.to_code): p for p in package_module.get_available_packages()
                     if p.type == "translate"}
        legs = [(source, target)] if (source, target) in available else \
            [leg for leg in ((source, PIVOT), (PIVOT, target)) if leg not in installed]
        missing = [f"{a}→{b}" for a, b in legs if (a, b) not in available]
        if missing:
            raise PackageInvalid(f"the package index has no {', '.join(missing)} package "
                                 f"(needed for {source}→{target})")
        downloads = [available[leg].download() for leg in legs]
    return install_files(argos_dir, downloads)


def _keep_newest(argos_dir: Path, pairs: list[tuple[str, str]]) -> list[ArgosPackage]:
    """Uninstall older versions of these pairs; the packages now installed for them."""
    newest = {(p.source, p.target): p for p in installed_packages(argos_dir)}
    with argos_environment(argos_dir) as package_module:
        for pkg in package_module.get_installed_packages():
            kept = newest.get((pkg.from_code, pkg.to_code))
            if (pkg.from_code, pkg.to_code) in pairs and kept and \
                    Path(pkg.package_path) != kept.path:
                package_module.uninstall(pkg)
    return [newest[pair] for pair in dict.fromkeys(pairs)]


def routes(packages: Sequence[ArgosPackage]) -> dict[tuple[str, str], list[ArgosPackage]]:
    """Every pair the packages translate: directly, or through English."""
    direct = {(p.source, p.target): [p] for p in packages}
    found = dict(direct)
    for first in packages:
        for second in packages:
            pair = (first.source, second.target)
            if first.target == PIVOT == second.source and pair[0] != pair[1] \
                    and pair not in found:
                found[pair] = [first, second]
    return found


# -- translating ---------------------------------------------------------------------------


class ArgosTranslator:
    """Translates with the installed Argos packages; sees packages installed while it runs."""

    engine = ENGINE

    def __init__(self, argos_dir: Path, threads: int = 1,
                 max_decoding_length: int = MAX_DECODING_LENGTH) -> None:
        import ctranslate2  # noqa: F401 - fail here, at start, when it is missing

        self.argos_dir = argos_dir
        self.threads = threads
        self.max_decoding_length = max_decoding_length
        self._lock = threading.Lock()
        self._fingerprint: tuple[tuple[str, float], ...] | None = None
        self._routes: dict[tuple[str, str], list[ArgosPackage]] = {}
        self._models: dict[Path, Any] = {}
        self._sentences: OrderedDict[tuple[str, str], list[str]] = OrderedDict()

    def supports(self, source: str, target: str) -> bool:
        """Whether an installed package (or two, through English) covers the pair."""
        return (source, target) in self._current_routes()

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        """Translate a batch of texts of one language pair."""
        route = self._current_routes().get((source, target))
        if route is None:
            raise TranslationUnavailable(f"no Argos package for {source}→{target}")
        current = list(texts)
        for step in route:
            current = self._translate_step(step, current)
        version = " + ".join(step.label for step in route)
        pivot = route[0].target if len(route) > 1 else None
        return [Translation(text, ENGINE, version, source, target, True, pivot)
                for text in current]

    def _current_routes(self) -> dict[tuple[str, str], list[ArgosPackage]]:
        """The routes of the installed packages, read again when the package folder changed."""
        fingerprint = _folder_fingerprint(self.argos_dir / "packages")
        with self._lock:
            if fingerprint != self._fingerprint:
                self._routes = routes(installed_packages(self.argos_dir))
                self._models = {path: model for path, model in self._models.items()
                                if path in {p.path for r in self._routes.values() for p in r}}
                self._sentences.clear()
                self._fingerprint = fingerprint
            return self._routes

    def _translate_step(self, step: ArgosPackage, texts: list[str]) -> list[str]:
        """One package's translation of every text: all their sentences in one batch."""
        paragraphs = [[split_sentences(p) for p in text.split("\n")] for text in texts]
        sentences = dict.fromkeys(s for text in paragraphs for p in text for s in p)
        known = self._recall(step, sentences)
        missing = [s for s in sentences if s not in known]
        if missing:
            known |= dict(zip(missing, self._run_model(step, missing), strict=True))
            self._remember(step, known)
        return ["\n".join(self._decode(step, [t for s in p for t in known[s]]) if p else ""
                          for p in text) for text in paragraphs]

    def _run_model(self, step: ArgosPackage, sentences: list[str]) -> list[list[str]]:
        """CTranslate2's translate_batch over tokenised sentences; target tokens back."""
        from argostranslate import settings

        tokenizer = step.package.tokenizer
        prefix = step.package.target_prefix
        results = self._model(step).translate_batch(
            [tokenizer.encode(sentence) for sentence in sentences],
            target_prefix=[[prefix]] * len(sentences) if prefix else None,
            beam_size=settings.beam_size, max_batch_size=1024, batch_type="tokens",
            replace_unknowns=True, min_decoding_length=1,
            max_decoding_length=self.max_decoding_length)
        return [result.hypotheses[0] for result in results]

    def _decode(self, step: ArgosPackage, tokens: list[str]) -> str:
        """Target tokens as text, without the package's target prefix."""
        text = step.package.tokenizer.decode(tokens) if tokens else ""
        prefix = step.package.target_prefix
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        return text.strip()

    def _model(self, step: ArgosPackage) -> Any:
        """The package's CTranslate2 model, loaded once."""
        with self._lock:
            if step.path not in self._models:
                import ctranslate2
                from argostranslate import settings

                self._models[step.path] = ctranslate2.Translator(
                    str(step.path / "model"), device=settings.device,
                    compute_type=settings.compute_type, inter_threads=1,
                    intra_threads=self.threads)
            return self._models[step.path]

    def _recall(self, step: ArgosPackage, sentences: Iterable[str]) -> dict[str, list[str]]:
        """Sentences this package translated lately (a pivot's first step, a repeated line)."""
        with self._lock:
            return {s: self._sentences[(step.label, s)] for s in sentences
                    if (step.label, s) in self._sentences}

    def _remember(self, step: ArgosPackage, translated: dict[str, list[str]]) -> None:
        with self._lock:
            for sentence, tokens in translated.items():
                self._sentences[(step.label, sentence)] = tokens
                self._sentences.move_to_end((step.label, sentence))
            while len(self._sentences) > CACHED_SENTENCES:
                self._sentences.popitem(last=False)


def _folder_fingerprint(folder: Path) -> tuple[tuple[str, float], ...]:
    """Names and times of the package folders: changes when a package is (un)installed."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((entry.name, entry.stat().st_mtime) for entry in folder.iterdir()))
