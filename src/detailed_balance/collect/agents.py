"""Agents: how a state becomes a prompt and how a reply becomes a state (or a rejection).

An agent never evaluates model output: replies are matched with regular expressions and looked up
in vocabularies, nothing else. Built-in agents:

- ``words``: the word task of Song et al. (arXiv:2512.10047): a word whose letter values
  (A=1 … Z=26) add up to 100, seed BUZZY; a word with another sum is an ``invalid`` rejection.
- ``animals``: a few-shot completion ("horse -> zebra") that a small base model handles; states are
  the animals of a fixed vocabulary, with case and plurals folded.

Users write a TOML file for :class:`TemplateAgent` (see :func:`load_agent`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import DataError


@dataclass(frozen=True)
class Parsed:
    """A parsed reply: ``state`` when accepted, else ``outcome`` and ``reason`` of the rejection.

    ``outcome`` is "ok", "invalid" (parsed, but not a valid state) or "unparseable".
    """

    state: str | None
    outcome: str = "ok"
    reason: str | None = None


@runtime_checkable
class Agent(Protocol):
    """What the collector needs from an agent.

    Attributes
    ----------
    name : str
    api : {"completion", "chat"}
        Which OpenAI endpoint the prompt is written for.
    seeds : tuple of str
        Canonical starting states.
    stop : tuple of str
    max_tokens : int
    """

    name: str
    api: str
    seeds: tuple[str, ...]
    stop: tuple[str, ...]
    max_tokens: int

    def prompt(self, state: str) -> str:
        """The prompt text (completion) or user message (chat) for ``state``."""

    def system(self) -> str | None:
        """The system message for chat agents, or None."""

    def parse(self, reply: str) -> Parsed:
        """Turn a raw reply into a canonical state or a rejection reason."""

    def canonical(self, text: str) -> str:
        """Canonical form of a state's text."""

    def template_hash(self) -> str:
        """A short hash of everything that defines the agent (prompt, parsing, vocabulary)."""


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# ---- canonicalisation steps (shared by built-ins and TOML agents) ---------------------------
_IRREGULAR_PLURALS = {
    "mice": "mouse",
    "geese": "goose",
    "oxen": "ox",
    "wolves": "wolf",
    "calves": "calf",
    "halves": "half",
    "leaves": "leaf",
    "knives": "knife",
    "wives": "wife",
    "lives": "life",
    "teeth": "tooth",
    "feet": "foot",
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "lice": "louse",
    "cacti": "cactus",
    "fungi": "fungus",
}


def singular(word: str, vocabulary: frozenset[str] | None = None) -> str:
    """Fold an English plural to its singular; with a vocabulary, prefer a form it contains.

    Parameters
    ----------
    word : str
        A word.
    vocabulary : frozenset of str, optional
        Known words.

    Returns
    -------
    str
        The singular (the word itself when it is not a recognised plural).

    Examples
    --------
    >>> singular("wolves"), singular("mice")
    ('wolf', 'mouse')
    """
    if vocabulary is not None and word in vocabulary:
        return word
    last = word.rsplit(" ", 1)
    head, tail = (last[0] + " ", last[1]) if len(last) == 2 else ("", last[0])
    if tail in _IRREGULAR_PLURALS:
        candidates = [_IRREGULAR_PLURALS[tail]]
    elif tail.endswith("ies") and len(tail) > 4:
        candidates = [tail[:-3] + "y", tail[:-1]]
    elif tail.endswith("ves"):
        candidates = [tail[:-3] + "f", tail[:-3] + "fe", tail[:-1]]
    elif tail.endswith(("ses", "xes", "zes", "ches", "shes")):
        candidates = [tail[:-2], tail[:-1]]
    elif tail.endswith("s") and not tail.endswith(("ss", "us", "is")) and len(tail) > 3:
        candidates = [tail[:-1]]
    else:
        candidates = []
    candidates = [head + c for c in candidates]
    if vocabulary is not None:
        for c in candidates:
            if c in vocabulary:
                return c
        return word
    return candidates[0] if candidates else word


_STEPS = ("strip", "lower", "upper", "collapse_spaces", "strip_punct", "singular")


def apply_steps(text: str, steps: tuple[str, ...], vocabulary: frozenset[str] | None = None) -> str:
    """Apply canonicalisation steps in order (names in ``_STEPS``).

    Parameters
    ----------
    text : str
        The reply text.
    steps : tuple of str
        Step names, applied in order.
    vocabulary : frozenset of str, optional
        Known words, for the ``singular`` step.

    Returns
    -------
    str
        The canonical text.
    """
    for step in steps:
        if step == "strip":
            text = text.strip()
        elif step == "lower":
            text = text.lower()
        elif step == "upper":
            text = text.upper()
        elif step == "collapse_spaces":
            text = " ".join(text.split())
        elif step == "strip_punct":
            text = text.strip(" \t.,;:!?\"'`*()[]{}")
        elif step == "singular":
            text = singular(text, vocabulary)
        else:
            raise ValueError(f"unknown canonicalisation step {step!r}; known: {', '.join(_STEPS)}")
    return text


# ---- the word task (Song et al.) --------------------------------------------------------------
def letter_sum(word: str) -> int:
    """Sum of letter values A=1 … Z=26 (non-letters count 0).

    Parameters
    ----------
    word : str
        A word.

    Returns
    -------
    int

    Examples
    --------
    >>> letter_sum("BUZZY")  # the paper's seed word
    100
    """
    return sum(ord(c) - 64 for c in word.upper() if "A" <= c <= "Z")


@dataclass(frozen=True)
class WordSumAgent:
    """The paper's word task: propose a new word whose letter values add up to ``target``.

    Examples
    --------
    >>> agent = WordSumAgent()
    >>> agent.parse(" attitude")
    Parsed(state='ATTITUDE', outcome='ok', reason=None)
    >>> agent.parse(" hello")
    Parsed(state=None, outcome='invalid', reason='letter sum of HELLO is 52, not 100')
    """

    name: str = "words"
    api: str = "chat"
    seeds: tuple[str, ...] = ("BUZZY",)
    stop: tuple[str, ...] = ()
    max_tokens: int = 16
    target: int = 100

    def system(self) -> str | None:
        return "You answer with a single English word in capital letters and nothing else."

    def prompt(self, state: str) -> str:
        return (
            f"Give each letter its place in the alphabet (A=1, B=2, ..., Z=26). The letters of "
            f"{state} add up to {self.target}. Reply with a different English word whose letters "
            f"also add up to {self.target}. Answer with the word only."
        )

    def canonical(self, text: str) -> str:
        return apply_steps(text, ("strip_punct", "upper"))

    def parse(self, reply: str) -> Parsed:
        m = re.fullmatch(r"[\s\"'*`]*([A-Za-z]+)[\s\"'*`.!]*", reply)
        if not m:
            return Parsed(None, "unparseable", "reply is not a single word")
        word = self.canonical(m.group(1))
        total = letter_sum(word)
        if total != self.target:
            return Parsed(None, "invalid", f"letter sum of {word} is {total}, not {self.target}")
        return Parsed(word)

    def template_hash(self) -> str:
        return _hash([self.name, self.api, self.system(), self.prompt("{state}"), self.target])


# ---- animals: a few-shot completion agent for small base models ---------------------------------
ANIMALS = frozenset(
    """
    aardvark albatross alligator alpaca anaconda ant anteater antelope ape armadillo baboon
    badger bat bear beaver bee beetle bird bison boar buffalo bull butterfly camel canary
    capybara caribou cat caterpillar cheetah chicken chimpanzee chinchilla chipmunk clam cobra
    cockroach cod cougar cow coyote crab crane cricket crocodile crow deer dingo dinosaur dog
    dolphin donkey dove dragonfly duck eagle eel elephant elk emu falcon ferret finch fish
    flamingo fly fox frog gazelle gecko gerbil gibbon giraffe goat goldfish goose gorilla
    grasshopper grizzly guinea pig gull hamster hare hawk hedgehog heron hippo hippopotamus
    horse hummingbird hyena ibex iguana impala jackal jaguar jellyfish kangaroo kingfisher
    kitten koala komodo lamb lemur leopard lion lizard llama lobster lynx macaw magpie mammoth
    manatee meerkat mink mole mongoose monkey moose mosquito moth mouse mule narwhal newt
    octopus opossum orangutan orca ostrich otter owl ox oyster panda panther parrot peacock
    pelican penguin pheasant pig pigeon platypus polar bear pony porcupine porpoise possum
    puffin puma puppy python quail rabbit raccoon ram rat raven reindeer rhino rhinoceros robin
    salamander salmon scorpion seal shark sheep shrimp skunk sloth slug snail snake sparrow
    spider squid squirrel stingray stork swallow swan tapir tarantula termite tiger toad
    tortoise toucan trout tuna turkey turtle vulture walrus wasp weasel whale wildebeest wolf
    wolverine wombat woodpecker worm yak zebra
    """.split()
) | frozenset({"guinea pig", "polar bear", "sea lion", "sea turtle", "killer whale", "blue whale"})


@dataclass(frozen=True)
class AnimalAgent:
    """Few-shot completion "X -> a similar animal"; states are animals of :data:`ANIMALS`.

    A reply outside the vocabulary is ``invalid`` (the analogue of the paper's non-words); a reply
    that is not a short phrase of letters is ``unparseable``.

    Examples
    --------
    >>> agent = AnimalAgent()
    >>> agent.prompt("dog").splitlines()[-1]  # a few-shot completion prompt
    'dog ->'
    >>> agent.parse(" wolf"), agent.parse(" table").outcome
    (Parsed(state='wolf', outcome='ok', reason=None), 'invalid')
    """

    name: str = "animals"
    api: str = "completion"
    seeds: tuple[str, ...] = ("dog",)
    stop: tuple[str, ...] = ("\n",)
    max_tokens: int = 8
    vocabulary: frozenset[str] = field(default=ANIMALS, repr=False)

    def system(self) -> str | None:
        return None

    def reply(self, state: str) -> str:
        """The canonical reply naming ``state`` (what logprob scoring scores)."""
        return " " + state

    def prompt(self, state: str) -> str:
        return f"Similar animals:\nhorse -> zebra\ncat -> tiger\nshark -> dolphin\n{state} ->"

    def canonical(self, text: str) -> str:
        return apply_steps(
            text, ("strip_punct", "lower", "collapse_spaces", "singular"), self.vocabulary
        )

    def parse(self, reply: str) -> Parsed:
        line = reply.strip().split("\n", 1)[0]
        if not re.fullmatch(r"[A-Za-z][A-Za-z \-]{0,40}[.!]?", line.strip()):
            return Parsed(None, "unparseable", "reply is not a short name")
        word = self.canonical(line)
        if word not in self.vocabulary:
            return Parsed(None, "invalid", f"{word!r} is not in the animal vocabulary")
        return Parsed(word)

    def template_hash(self) -> str:
        return _hash([self.name, self.api, self.prompt("{state}"), sorted(self.vocabulary)])


# ---- TOML template agents --------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateAgent:
    """An agent configured by a TOML file, so users add agents without code.

    Keys: ``name``, ``prompt`` (with ``{state}``), ``api`` ("completion"|"chat"), ``system``,
    ``seeds``, ``stop``, ``max_tokens``, ``parse`` (regex; group 1, or the whole match, is the
    state), ``canonical`` (steps from strip, lower, upper, collapse_spaces, strip_punct, singular),
    ``valid`` (regex the canonical state must fully match), ``vocabulary`` (list of allowed states),
    ``letter_sum`` (required A=1…Z=26 sum), ``reply`` (the canonical reply naming ``{state}``, for
    logprob scoring; default ``" {state}"``).
    """

    name: str
    prompt_template: str
    api: str = "completion"
    system_message: str | None = None
    seeds: tuple[str, ...] = ()
    stop: tuple[str, ...] = ("\n",)
    max_tokens: int = 16
    parse_regex: str = r"\s*(.+?)\s*$"
    steps: tuple[str, ...] = ("strip",)
    valid_regex: str | None = None
    vocabulary: frozenset[str] | None = None
    letter_sum: int | None = None
    reply_template: str = " {state}"

    def reply(self, state: str) -> str:
        """The canonical reply naming ``state`` (what logprob scoring scores)."""
        return self.reply_template.replace("{state}", state)

    def system(self) -> str | None:
        return self.system_message

    def prompt(self, state: str) -> str:
        return self.prompt_template.replace("{state}", state)

    def canonical(self, text: str) -> str:
        return apply_steps(text, self.steps, self.vocabulary)

    def parse(self, reply: str) -> Parsed:
        m = re.search(self.parse_regex, reply)
        if not m:
            return Parsed(None, "unparseable", f"reply does not match {self.parse_regex!r}")
        text = m.group(1) if m.groups() else m.group(0)
        state = self.canonical(text)
        if not state:
            return Parsed(None, "unparseable", "empty state after canonicalisation")
        if self.valid_regex is not None and not re.fullmatch(self.valid_regex, state):
            return Parsed(None, "invalid", f"{state!r} does not match {self.valid_regex!r}")
        if self.vocabulary is not None and state not in self.vocabulary:
            return Parsed(None, "invalid", f"{state!r} is not in the vocabulary")
        if self.letter_sum is not None and letter_sum(state) != self.letter_sum:
            return Parsed(
                None,
                "invalid",
                f"letter sum of {state} is {letter_sum(state)}, not {self.letter_sum}",
            )
        return Parsed(state)

    def template_hash(self) -> str:
        return _hash(
            [
                self.name,
                self.api,
                self.system_message,
                self.prompt_template,
                self.parse_regex,
                list(self.steps),
                self.valid_regex,
                sorted(self.vocabulary or ()),
                self.letter_sum,
            ]
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> TemplateAgent:
        """Read a template agent; a missing or wrong key is a :class:`DataError` naming the file."""
        path = str(path)
        try:
            with open(path, "rb") as fh:
                cfg = tomllib.load(fh)
        except OSError as exc:
            raise DataError(f"cannot read agent file: {exc.strerror}", file=path) from None
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"not valid TOML: {exc}", file=path) from None
        known = set(_TOML_KEYS)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DataError(
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=path
            )
        for key, value in cfg.items():
            problem = _toml_type_problem(key, value)
            if problem:
                raise DataError(problem, file=path)
        if "prompt" not in cfg or "{state}" not in str(cfg["prompt"]):
            raise DataError("'prompt' is required and must contain {state}", file=path)
        api = cfg.get("api", "completion")
        if api not in ("completion", "chat"):
            raise DataError(f"api must be 'completion' or 'chat', not {api!r}", file=path)
        steps = tuple(cfg.get("canonical", ["strip"]))
        bad = [s for s in steps if s not in _STEPS]
        if bad:
            raise DataError(
                f"unknown canonical step {bad[0]!r}; known: {', '.join(_STEPS)}", file=path
            )
        for key in ("parse", "valid"):
            if key in cfg:
                try:
                    re.compile(cfg[key])
                except re.error as exc:
                    raise DataError(
                        f"'{key}' is not a valid regular expression: {exc}", file=path
                    ) from None
        vocab = cfg.get("vocabulary")
        agent = cls(
            name=str(cfg.get("name", Path(path).stem)),
            prompt_template=str(cfg["prompt"]),
            api=api,
            system_message=cfg.get("system"),
            stop=tuple(cfg.get("stop", ["\n"] if api == "completion" else [])),
            max_tokens=int(cfg.get("max_tokens", 16)),
            parse_regex=cfg.get("parse", r"\s*(.+?)\s*$"),
            steps=steps,
            valid_regex=cfg.get("valid"),
            vocabulary=None if vocab is None else frozenset(apply_steps(v, steps) for v in vocab),
            letter_sum=cfg.get("letter_sum"),
            reply_template=str(cfg.get("reply", " {state}")),
        )
        seeds = tuple(agent.canonical(s) for s in cfg.get("seeds", []))
        if not seeds:
            raise DataError("'seeds' must list at least one starting state", file=path)
        for s in seeds:
            if agent.parse(s).state != s:
                raise DataError(f"seed {s!r} is not a valid state of this agent", file=path)
        return cls(**{**agent.__dict__, "seeds": seeds})


# What each key of an agent file holds (checked before use: a wrong type is one line naming the
# file and the key, never a TypeError from deep inside).
_TOML_KEYS = {
    "name": "text",
    "prompt": "text",
    "api": "text",
    "system": "text",
    "seeds": "a list of text",
    "stop": "a list of text",
    "max_tokens": "a positive integer",
    "parse": "text",
    "canonical": "a list of text",
    "valid": "text",
    "vocabulary": "a list of text",
    "letter_sum": "an integer",
    "reply": "text",
}


def _toml_type_problem(key: str, value) -> str | None:
    """Why ``value`` cannot be the agent file's ``key`` (None when it can)."""
    kind = _TOML_KEYS[key]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "text":
        ok = isinstance(value, str)
    elif kind == "a list of text":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind == "a positive integer":
        ok = is_int and value > 0
    else:
        ok = is_int
    if ok:
        return None
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"'{key}' must be {kind}, not {shown}"


BUILTIN = {"words": WordSumAgent, "animals": AnimalAgent}


def load_agent(name_or_file: str) -> Agent:
    """A built-in agent by name (``words``, ``animals``) or a :class:`TemplateAgent` from TOML.

    Parameters
    ----------
    name_or_file : str or Path
        ``"words"``, ``"animals"``, or the path of a TOML file (see :class:`TemplateAgent`).

    Returns
    -------
    Agent

    Examples
    --------
    >>> load_agent("words").parse(" attitude").state
    'ATTITUDE'
    """
    if name_or_file in BUILTIN:
        return BUILTIN[name_or_file]()
    if name_or_file.endswith(".toml") or Path(name_or_file).exists():
        return TemplateAgent.from_toml(name_or_file)
    raise DataError(
        f"unknown agent {name_or_file!r}: use one of {', '.join(BUILTIN)} or a .toml file"
    )
