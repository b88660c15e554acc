"""Output processing without a model: the numpy sampler and the byte-piece detokenizer."""

from __future__ import annotations

import numpy as np

from inference.engine.output import draw_index, sample_token
from inference.engine.text import PieceDetokenizer, StopMatcher
from inference.engine.types import SamplingParams

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))


def draws(params: SamplingParams, n: int = 4000, counts: dict[int, int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(0)
    picked = [sample_token(LOGITS, params, counts or {}, rng) for _ in range(n)]
    return np.bincount(picked, minlength=len(LOGITS)) / n


def test_temperature_one_samples_the_softmax_distribution():
    freq = draws(SamplingParams(temperature=1.0))
    assert np.allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_top_p_keeps_tokens_until_the_mass_before_them_reaches_top_p():
    # mass before token 2 is 0.8 >= 0.75: tokens 0 and 1 survive, renormalised to 0.625 / 0.375
    freq = draws(SamplingParams(temperature=1.0, top_p=0.75))
    assert freq[2] == freq[3] == 0
    assert np.allclose(freq[:2], [0.625, 0.375], atol=0.03)
    assert draws(SamplingParams(temperature=1.0, top_p=0.01))[0] == 1.0  # the top token always stays


def test_penalties_push_repeated_tokens_down_and_greedy_follows():
    params = SamplingParams(temperature=0.0, presence_penalty=1.0, frequency_penalty=0.5)
    assert sample_token(LOGITS, params, {0: 2}, None) == 1
    assert sample_token(LOGITS, SamplingParams(temperature=0.0), {0: 2}, None) == 0
    assert LOGITS[0] == np.log(np.float32(0.5))  # the runner's logits row is never modified


def test_same_seed_same_tokens():
    params = SamplingParams(temperature=0.8, top_p=0.9)
    a = [sample_token(LOGITS, params, {}, rng) for rng in [np.random.default_rng(7)] for _ in range(50)]
    b = [sample_token(LOGITS, params, {}, rng) for rng in [np.random.default_rng(7)] for _ in range(50)]
    assert a == b


def test_piece_detokenizer_holds_back_split_utf8_characters():
    pieces = {1: "Hé".encode()[:2], 2: "Hé".encode()[2:] + b" w", 3: "🙂".encode()[:3], 4: "🙂".encode()[3:], 5: b""}
    detok = PieceDetokenizer(pieces.__getitem__)
    out = [detok.push(t) for t in (1, 2, 5, 3, 4)]
    assert out == ["H", "é w", "", "", "🙂"]
    detok.push(3)  # a dangling half character is dropped at the end
    assert detok.flush() == ""


def test_stop_matcher_holds_back_partial_stop():
    m = StopMatcher(["END"])
    assert m.feed("abc E") == ("abc ", False)
    assert m.feed("N") == ("", False)
    assert m.feed("D tail") == ("", True)
    m = StopMatcher(["###"])
    assert m.feed("a#") == ("a", False)
    assert m.feed("b") == ("#b", False)


def test_the_two_level_draw_picks_what_a_full_cumulative_sum_picks():
    """draw_index sums blocks first; on a vocabulary-sized row (with a ragged tail and zero
    weights) it lands where np.cumsum + searchsorted lands, up to float32 rounding at a boundary."""
    rng = np.random.default_rng(3)
    weights = np.exp(rng.standard_normal(49_157).astype(np.float32) * 3)
    weights[rng.choice(len(weights), 5000, replace=False)] = 0.0
    cdf = np.cumsum(weights.astype(np.float64))
    for r in [0.0, 1e-9, 0.5, 0.999999, *rng.random(300)]:
        expected = int(min(np.searchsorted(cdf, r * cdf[-1], side="right"), len(cdf) - 1))
        picked = draw_index(weights, r)
        assert abs(cdf[picked] - cdf[expected]) <= 1e-5 * cdf[-1]
        assert weights[picked] > 0
