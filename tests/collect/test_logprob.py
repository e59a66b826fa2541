"""Logprob-scored kernels over real HTTP (the loopback server on 127.0.0.1): the reply's tokens
plus the total probability of every token that ends it, read from the endpoint's top logprobs."""

import math
import re
from functools import partial

import numpy as np
import pytest
from _collecting import MODEL

from detailed_balance.collect import AnimalAgent
from detailed_balance.collect.agents import TemplateAgent
from detailed_balance.collect.logprob import score_kernel, stop_logprob
from detailed_balance.errors import CollectionError
from detailed_balance.testing.server import LoopbackServer, Script, ThreadedLoopbackServer


def _expected(script: Script, kernel, stop_total: float) -> np.ndarray:
    true = np.array(script.kernel())
    return np.log(true[kernel.source, kernel.target] * stop_total)


def test_logprob_kernel_is_the_servers_kernel_times_every_stop_token():
    """After a reply "\\n" has 0.6 and "\\n\\n" 0.3 (and "," 0.1): both end it, so T x 0.9."""
    script = Script()
    with LoopbackServer() as server:  # its own process, as a real endpoint
        kernel = score_kernel(AnimalAgent(), server.base_url, MODEL, script.vocabulary)
    assert kernel.convention == "logprob" and len(kernel.log_prob) == 6 * 5
    np.testing.assert_allclose(kernel.log_prob, _expected(script, kernel, 0.9), rtol=1e-12)


def test_the_agents_stop_strings_decide_which_tokens_end_the_reply():
    after = {"\n": 0.2, "\n\n": 0.1, ",": 0.45, " and": 0.25}
    script = Script(after_reply=after)
    agents = {  # stop strings -> the exact total of the tokens starting with one of them
        ("\n",): 0.3,
        ("\n", ","): 0.75,
        ("\n\n",): 0.1,
    }
    with ThreadedLoopbackServer(after_reply=after) as server:
        for stop, total in agents.items():
            agent = TemplateAgent(name="animals", prompt_template="{state} ->", stop=stop)
            kernel = score_kernel(agent, server.base_url, MODEL, script.vocabulary)
            np.testing.assert_allclose(
                kernel.log_prob, _expected(script, kernel, total), rtol=1e-12
            )


def test_stop_tokens_outside_the_top_k_are_bounded_and_refused_beyond_max_unseen():
    script = Script()
    with ThreadedLoopbackServer() as server:
        score = partial(score_kernel, AnimalAgent(), server.base_url, MODEL, script.vocabulary)
        with pytest.raises(CollectionError, match=r"30 of 30 arcs may miss up to 0.511 nats"):
            score(top_logprobs=1)
        # top 1 sees "\n" only (0.6); 0.4 is unseen, so the truth is at most log(1 + 0.4/0.6) above
        lower = score(top_logprobs=1, max_unseen=math.inf)
        np.testing.assert_allclose(lower.log_prob, _expected(script, lower, 0.6), rtol=1e-12)
        # top 2 sees both stop tokens; the bound log(1 + 0.1/0.9) = 0.105 is still refused at 0.05
        with pytest.raises(CollectionError, match=r"up to 0.105 nats"):
            score(top_logprobs=2)
        exact = score(top_logprobs=2, max_unseen=0.11)
    np.testing.assert_allclose(exact.log_prob, _expected(script, exact, 0.9), rtol=1e-12)


def test_no_stop_token_in_the_top_k_is_refused_even_when_lower_bounds_are_accepted():
    agent = TemplateAgent(name="animals", prompt_template="{state} ->", stop=("@@",))
    with ThreadedLoopbackServer() as server:  # after a reply: "\n", "\n\n", "," only
        with pytest.raises(CollectionError, match=r"30 of 30 arcs have no token starting") as err:
            score_kernel(agent, server.base_url, MODEL, Script().vocabulary, max_unseen=math.inf)
    assert "\n" not in str(err.value)


def test_an_endpoint_without_top_logprobs_is_refused_in_one_line():
    with ThreadedLoopbackServer(top_logprobs=False) as server:
        with pytest.raises(CollectionError, match="no top logprobs after the reply") as err:
            score_kernel(AnimalAgent(), server.base_url, MODEL, ["dog", "cat"])
    assert server.base_url in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [{"top_logprobs": 0}, {"max_unseen": -1.0}])
def test_bad_scoring_options_are_refused(bad):
    with pytest.raises(CollectionError, match=next(iter(bad))):
        score_kernel(AnimalAgent(), "http://127.0.0.1:9/v1", MODEL, ["dog", "cat"], **bad)


def test_an_empty_token_counts_towards_the_bound_not_the_stop_mass():
    """llama-cpp-python shows end-of-text (and other text-less tokens) as "": ambiguous."""

    class Echoed:
        text_offset = [0, 5]
        top_logprobs = [None, {"\n": math.log(0.5), "": math.log(0.1), ",": math.log(0.3)}]

    seen, bound = stop_logprob(Echoed(), 5, ["\n"])
    assert seen == pytest.approx(math.log(0.5))
    assert bound == pytest.approx(math.log((0.5 + 0.1 + 0.1) / 0.5))  # "" and 1 - 0.9 unseen
    with pytest.raises(CollectionError, match="merged the reply's end"):
        stop_logprob(Echoed(), 3, ["\n"])


def test_the_ending_is_read_at_the_generated_token_and_odd_echoes_are_refused_in_one_line():
    """The last token is the generated one; offsets that put the reply's own last token at its
    end too (an endpoint whose offsets drift) would score the wrong distribution, so are refused,
    as are top logprobs not given as {token: logprob} and an echo with no generated token."""
    ending = {"\n": math.log(0.9), "x": math.log(0.1)}
    in_reply = {"t": math.log(0.99), "\n": math.log(0.01)}  # inside " cat": not the ending's

    def echoed(offsets, tops):
        return type("Echoed", (), {"text_offset": offsets, "top_logprobs": tops})()

    seen, bound = stop_logprob(echoed([0, 4, 5], [None, in_reply, ending]), 5, ["\n"])
    assert seen == pytest.approx(math.log(0.9)) and bound == 0.0
    refused = {
        "do not match the echoed text": echoed([0, 4, 5, 5], [None, None, in_reply, ending]),
        "a {token: logprob} dict": echoed([0, 5], [None, [{"token": "\n", "logprob": -0.1}]]),
        "no token after the reply": echoed([0, 4], [None, in_reply]),  # end-of-text, not echoed
    }
    for message, lp in refused.items():
        with pytest.raises(CollectionError, match=re.escape(message)) as err:
            stop_logprob(lp, 5, ["\n"])
        assert "\n" not in str(err.value)
