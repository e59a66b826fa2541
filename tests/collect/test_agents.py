"""Agents: prompts, parsing, canonicalisation, rejections; TOML template agents."""

import pytest

from detailed_balance.collect.agents import (
    ANIMALS,
    AnimalAgent,
    TemplateAgent,
    WordSumAgent,
    letter_sum,
    load_agent,
    singular,
)
from detailed_balance.errors import DataError


def test_letter_sum_and_seed():
    assert letter_sum("BUZZY") == 2 + 21 + 26 + 26 + 25 == 100
    assert letter_sum("abc") == 6


def test_word_agent_accepts_only_sum_100_words():
    agent = WordSumAgent()
    assert agent.seeds == ("BUZZY",)
    assert "BUZZY" in agent.prompt("BUZZY") and "100" in agent.prompt("BUZZY")
    assert agent.parse("  attitude. ").state == "ATTITUDE"  # 1+20+20+9+20+21+4+5 = 100
    wrong = agent.parse("cat")
    assert wrong.state is None and wrong.outcome == "invalid" and "24" in wrong.reason
    junk = agent.parse("Sure! Here are two words: A and B")
    assert junk.state is None and junk.outcome == "unparseable"


@pytest.mark.parametrize(
    "reply, state",
    [
        (" Zebra", "zebra"),
        (" wolves.", "wolf"),
        (" mice", "mouse"),
        (" Ponies", "pony"),
        (" foxes", "fox"),
        (" GUINEA PIGS", "guinea pig"),
        (" geese\n", "goose"),
        (" bats", "bat"),
    ],
)
def test_animal_agent_folds_case_and_plurals(reply, state):
    assert AnimalAgent().parse(reply).state == state


def test_animal_agent_rejections():
    agent = AnimalAgent()
    invalid = agent.parse(" human")
    assert invalid.outcome == "invalid" and "vocabulary" in invalid.reason
    bad = agent.parse(" {{ %% ### }}")
    assert bad.outcome == "unparseable"
    assert agent.parse(" ").outcome == "unparseable"
    assert agent.prompt("dog").endswith("dog ->")
    assert agent.parse(agent.reply("polar bear")).state == "polar bear"


def test_singular_prefers_vocabulary_forms():
    assert singular("bass", frozenset({"bass"})) == "bass"  # not "bas"
    assert singular("octopus") == "octopus"
    assert singular("butterflies", ANIMALS) == "butterfly"
    assert singular("wolves") == "wolf"


def test_template_hash_changes_with_the_prompt():
    assert AnimalAgent().template_hash() == AnimalAgent().template_hash()
    assert AnimalAgent().template_hash() != WordSumAgent().template_hash()


TOML = """
name = "colours"
api = "completion"
prompt = "Colours that go together:\\nred -> green\\n{state} ->"
seeds = ["Blue"]
stop = ["\\n"]
parse = '^\\s*([A-Za-z]+)'
canonical = ["strip", "lower"]
valid = "[a-z]{3,10}"
vocabulary = ["blue", "red", "green", "yellow", "purple"]
"""


def test_template_agent_from_toml(write):
    agent = load_agent(str(write("colours.toml", TOML)))
    assert isinstance(agent, TemplateAgent) and agent.name == "colours"
    assert agent.seeds == ("blue",)
    assert agent.prompt("blue").endswith("blue ->")
    assert agent.parse(" Yellow, obviously").state == "yellow"
    assert agent.parse(" magenta").outcome == "invalid"
    assert agent.parse("  ...").outcome == "unparseable"
    assert agent.stop == ("\n",)


def test_template_agent_letter_sum(write):
    path = write(
        "w.toml",
        'prompt = "{state}"\nseeds = ["buzzy"]\ncanonical = ["strip", "upper"]\nletter_sum = 100\n',
    )
    agent = TemplateAgent.from_toml(path)
    assert agent.seeds == ("BUZZY",)
    assert agent.parse("cat").outcome == "invalid"


@pytest.mark.parametrize(
    "text, message",
    [
        ('prompt = "no placeholder"\nseeds = ["a"]', "{state}"),
        ('prompt = "{state}"', "seeds"),
        ('prompt = "{state}"\nseeds = ["a"]\nprase = "x"', "unknown key"),
        ('prompt = "{state}"\nseeds = ["a"]\nparse = "("', "regular expression"),
        ('prompt = "{state}"\nseeds = ["a"]\napi = "fax"', "api"),
        ('prompt = "{state}"\nseeds = ["a"]\ncanonical = ["shout"]', "canonical step"),
        ('prompt = "{state}"\nseeds = ["zz"]\nvocabulary = ["a"]', "seed"),
        ("prompt = ", "TOML"),
    ],
)
def test_template_agent_bad_files_name_the_file(write, text, message):
    path = write("bad.toml", text)
    with pytest.raises(DataError, match=message) as err:
        TemplateAgent.from_toml(path)
    assert "bad.toml" in str(err.value)


def test_unknown_agent_name():
    with pytest.raises(DataError, match="unknown agent"):
        load_agent("no-such-agent")
