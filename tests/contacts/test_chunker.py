from __future__ import annotations

import itertools
import random

import pytest

from dispatcher.chunker import by_method, capacity, chunk_ref, fewest_requests, fits, limits_for, plan
from dispatcher.errors import UnknownVendorError
from dispatcher.vendors import VENDORS, default_separators, registry, trigger, yunxin
from dispatcher.vendors.wire import Credentials, Separators, breaks_packing, packed_conflict


def _messages(groups: list[int]) -> tuple[list[str], list[str]]:
    texts = [f"text {g}【店】" for g, size in enumerate(groups) for _ in range(size)]
    random.Random(7).shuffle(texts)
    return [f"139{i:08d}" for i in range(len(texts))], texts


def _brute_force(sizes: list[int], same: int, pers: int) -> int:
    """Exact optimum: try every number of same-text requests per group."""
    best = None
    for ks in itertools.product(*[range(-(-g // same) + 1) for g in sizes]):
        pooled = sum(max(0, g - k * same) for g, k in zip(sizes, ks, strict=True))
        total = sum(ks) + -(-pooled // pers)
        best = total if best is None else min(best, total)
    return best or 0


def _check_valid(chunks, mobiles, texts, vendor, separators=Separators()) -> None:  # type: ignore[no-untyped-def]
    limits, methods = limits_for(vendor)
    covered = sorted(i for c in chunks for i in c.indexes)
    assert covered == list(range(len(texts)))  # every message exactly once
    for c in chunks:
        assert c.mobiles == tuple(mobiles[i] for i in c.indexes)
        if c.texts is None:
            assert all(texts[i] == c.text for i in c.indexes)
            assert len(c.indexes) <= limits.same_text_numbers
            assert c.method in (methods.same_text, methods.single)
        else:
            assert c.texts == tuple(texts[i] for i in c.indexes)
            assert len(c.indexes) <= limits.personalised_messages
            assert c.method == methods.personalised
            if methods.separated:  # the body, as packed, parses back into its messages
                assert packed_conflict(list(zip(c.mobiles, c.texts, strict=True)), separators) is None


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("seed", range(6))
def test_given_mixed_groups_when_planned_then_valid_and_within_the_lower_bound(
    vendor: str, seed: int
) -> None:
    rng = random.Random(seed)
    limits = registry.get(vendor).LIMITS
    scale = max(limits.same_text_numbers, limits.personalised_messages, 2)
    sizes = [rng.choice([1, 2, rng.randint(1, scale), rng.randint(scale, 3 * scale)]) for _ in range(5)]
    sizes += [1] * rng.randint(0, 2 * limits.personalised_messages)
    mobiles, texts = _messages(sizes)
    chunks = plan(mobiles, texts, vendor, campaign_id=42)
    _check_valid(chunks, mobiles, texts, vendor)
    same = limits.same_text_numbers if registry.get(vendor).SEND_METHODS.same_text else 1
    pers = limits.personalised_messages if registry.get(vendor).SEND_METHODS.personalised else 1
    # Lower bounds: no request carries more than the larger limit, and none mixes two texts same-text,
    # so with S >= P every group's full batches are needed: sum(g // S) + ceil(rest / P).
    assert len(chunks) >= -(-len(texts) // max(same, pers))
    if same >= pers:
        full = sum(g // same for g in sizes)
        assert len(chunks) >= full + -(-sum(g % same for g in sizes) // max(same, pers))
    assert len(chunks) == fewest_requests(sizes, [True] * len(sizes), same, pers)


@pytest.mark.parametrize("vendor", VENDORS)
def test_given_small_mixed_inputs_then_plan_equals_brute_force_optimum(vendor: str) -> None:
    rng = random.Random(vendor)
    same, pers = (
        registry.get(vendor).LIMITS.same_text_numbers,
        registry.get(vendor).LIMITS.personalised_messages,
    )
    for _ in range(20):
        sizes = [rng.randint(1, max(same, pers) + 3) for _ in range(rng.randint(1, 3))]
        sizes += [1] * rng.randint(0, pers + 2)
        mobiles, texts = _messages(sizes)
        chunks = plan(mobiles, texts, vendor, campaign_id=1)
        compact = [s for s in sizes if s > 1] + [1] * min(sizes.count(1), 3)
        # singletons are interchangeable: brute force on a few and the closed form must agree on the whole
        assert fewest_requests(compact, [True] * len(compact), same, pers) == _brute_force(
            compact, same, pers
        )
        assert len(chunks) == fewest_requests(sizes, [True] * len(sizes), same, pers)


@pytest.mark.parametrize(
    ("vendor", "sizes", "expected"),
    [
        # webservice: one number per request, whatever the texts
        ("webservice", [3, 1, 1], {"SendMsg": 5}),
        # yunxin: 1,200 identical + 150 distinct = one SendMsg of 500, and 700 + 150 in one IndividualSm
        ("yunxin", [1200, *[1] * 150], {"SendMsg": 1, "IndividualSm": 1}),
        # yunxin: personalised carries 1,000 > 500, so two groups of 500 fit one IndividualSm
        ("yunxin", [500, 500], {"IndividualSm": 1}),
        # trigger: 50 per batch and per personalised request; a lone text goes SendMsg
        ("trigger", [120, *[1] * 51], {"SendBatchMsg": 2, "SendIndividualMsg": 2}),
        ("trigger", [1], {"SendMsg": 1}),
        # entinfo: 10,000 numbers per mdsmssend, 1,000 messages per mdgxsend
        ("entinfo", [25_000, *[1] * 1500], {"mdsmssend": 3, "mdgxsend": 2}),
    ],
)
def test_given_vendor_limits_then_requests_per_method(
    vendor: str, sizes: list[int], expected: dict[str, int]
) -> None:
    mobiles, texts = _messages(sizes)
    chunks = plan(mobiles, texts, vendor, campaign_id=7)
    _check_valid(chunks, mobiles, texts, vendor)
    assert by_method(chunks) == expected


def test_given_entinfo_same_text_setting_then_it_caps_the_batch() -> None:
    mobiles, texts = _messages([10_000])
    assert len(plan(mobiles, texts, "entinfo", campaign_id=1)) == 1
    chunks = plan(mobiles, texts, "entinfo", campaign_id=1, same_text_max=5000)
    assert [len(c.mobiles) for c in chunks] == [5000, 5000]
    with pytest.raises(ValueError):
        plan(mobiles, texts, "entinfo", campaign_id=1, same_text_max=20_000)


@pytest.mark.parametrize("separators", [Separators(), Separators(pair="|~|", message="|-|")])
def test_given_a_text_holding_the_separator_then_it_is_never_packed_personalised(
    separators: Separators,
) -> None:
    texts = [f"a{separators.pair}b【店】", "x【店】", "y【店】", f"c{separators.message}d【店】"]
    mobiles = [f"1391234567{i}" for i in range(4)]
    chunks = plan(mobiles, texts, "trigger", campaign_id=1, separators=separators)
    _check_valid(chunks, mobiles, texts, "trigger", separators)
    assert by_method(chunks) == {"SendMsg": 2, "SendIndividualMsg": 1}
    # entinfo URL-encodes each content, so separators do not matter there
    assert by_method(plan(mobiles, texts, "entinfo", campaign_id=1)) == {"mdgxsend": 1}


@pytest.mark.parametrize("vendor", ["trigger", "yunxin"])
def test_given_texts_that_form_a_separator_only_as_packed_then_each_goes_alone(vendor: str) -> None:
    pair, message = default_separators(vendor).pair, default_separators(vendor).message
    # Each holds no separator, but completes one with the separator before or after it as packed:
    # "-|王" after "|~|" makes "|~|-|", which holds "|-|"
    forming = [f"{message[1:]}王【店】", f"{pair[1:]}王【店】", f"王{message[:-1]}", f"王{pair[:-1]}"]
    forming += [f"{message[2:]}王【店】", f"王{message[:1]}"]
    plain = [f"顾客{i}您好【店】" for i in range(6)]
    texts = plain[:3] + forming + plain[3:]
    mobiles = [f"1391234{i:04d}" for i in range(len(texts))]
    separators = Separators(pair, message)

    chunks = plan(mobiles, texts, vendor, campaign_id=1, separators=separators)

    _check_valid(chunks, mobiles, texts, vendor, separators)
    alone = sorted(texts[i] for c in chunks if c.texts is None for i in c.indexes)
    assert alone == sorted(t for t in texts if breaks_packing(t, separators))
    assert set(alone) >= set(forming[:4])
    # ... and a request packed with one anyway is never built: it would break every message of it
    module = trigger if vendor == "trigger" else yunxin
    for text in forming[:4]:
        with pytest.raises(ValueError, match="forms a separator"):
            module.build_personalised(Credentials("u", "p"), [(mobiles[0], text), (mobiles[1], "好【店】")])


@pytest.mark.parametrize("seed", range(3))
def test_given_random_texts_of_separator_characters_then_every_personalised_body_parses_back(
    seed: int,
) -> None:
    rng = random.Random(seed)
    for separators in (Separators(), Separators(pair="|~|", message="|-|")):
        alphabet = [*sorted(set(separators.pair + separators.message)), "王"]
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)]
        mobiles = [f"1391{i:07d}" for i in range(len(texts))]
        chunks = plan(mobiles, texts, "trigger", campaign_id=1, separators=separators)
        _check_valid(chunks, mobiles, texts, "trigger", separators)
        for c in chunks:
            if c.texts is None:
                continue
            body = trigger.build_personalised(
                Credentials("u", "p"), list(zip(c.mobiles, c.texts, strict=True)), separators=separators
            ).form["Msg"]
            # As a gateway reads it: messages first, then number and text (and the other way round)
            read = [m.partition(separators.pair) for m in body.split(separators.message)]
            assert [(n, t) for n, _, t in read] == list(zip(c.mobiles, c.texts, strict=True))
            assert body.count(separators.pair) == len(c.texts)


def test_chunk_refs_are_stable_digits_of_at_most_18() -> None:
    assert chunk_ref(42, 3) == chunk_ref(42, 3) == "420000003"
    assert chunk_ref("campaign-uuid", 5) == chunk_ref("campaign-uuid", 5)
    refs = {chunk_ref(c, s) for c in (0, 1, 99_999_999_999, "x", 10**12) for s in (0, 1, 9_999_999)}
    assert len(refs) == 15 and all(r.isdigit() and len(r) <= 18 for r in refs)
    mobiles, texts = _messages([3, 1, 1])
    first, again = (
        plan(mobiles, texts, "trigger", campaign_id=9),
        plan(mobiles, texts, "trigger", campaign_id=9),
    )
    assert (
        [(c.seq, c.ref) for c in first]
        == [(c.seq, c.ref) for c in again]
        == [(i, chunk_ref(9, i)) for i in range(len(first))]
    )


def test_given_an_unknown_vendor_then_error() -> None:
    with pytest.raises(UnknownVendorError):
        plan([], [], "nope", campaign_id=1)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("encrypted", [False, True])
def test_every_chunk_planned_for_an_account_fits_its_capacity_and_one_too_many_does_not(
    vendor: str, encrypted: bool
) -> None:
    mobiles, texts = _messages([700, 1, 1, 3, 1200])
    room = capacity(vendor, encrypted=encrypted)
    for c in plan(mobiles, texts, vendor, campaign_id=1, encrypted=encrypted):
        assert fits(room, personalised=c.texts is not None, count=len(c.mobiles))
    assert not fits(room, personalised=False, count=room[0] + 1)
    assert not fits(room, personalised=True, count=room[1] + 1)


def test_a_yunxin_request_does_not_fit_a_trigger_account_but_a_trigger_one_fits_yunxin() -> None:
    assert not fits(capacity("trigger"), personalised=False, count=500)
    assert not fits(capacity("webservice"), personalised=True, count=1)  # no personalised method
    assert fits(capacity("yunxin"), personalised=False, count=50)
    # An account's same_text_max is advice: a chunk planned before it was lowered still fits
    assert fits(capacity("yunxin"), personalised=False, count=500)
    assert not fits(capacity("yunxin"), personalised=False, count=501)
    assert not fits(capacity("trigger", encrypted=True), personalised=False, count=2)
