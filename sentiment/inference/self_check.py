"""The self-check that keeps a fast execution path honest, as plain logic: a built-in labelled sample, and the
verdict on a path's labels against fp32's and against the sample's own labels.

A path is served only when its labels agree with fp32 on at least 99% of the sample (near-ties left out) and
its accuracy on the sample is no more than 0.005 below fp32's. The sample is large enough for those bounds to
mean something: a path that changes 2% of labels disagrees on about six of its texts, three more than it
may."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from sentiment.core.domain import Label, Scored

MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.005
TIE_MARGIN = 0.1

_SUBJECTS = (
    "The hotel",
    "This phone",
    "The flight",
    "Our waiter",
    "The new album",
    "The customer service",
    "This movie",
    "The delivery",
    "The concert",
    "My new laptop",
    "The restaurant",
    "The train ride",
    "The app update",
    "The book",
    "The support team",
)
_POSITIVE = (
    "was absolutely wonderful",
    "exceeded every expectation I had",
    "made my whole week",
    "was a delight from start to finish",
    "is the best I have ever tried",
    "was friendly, fast and helpful",
    "left me smiling all day",
    "was worth every penny",
    "felt warm and welcoming",
    "was simply brilliant",
    "could not have been better",
    "was superb",
    "really impressed me",
    "was genuinely lovely",
    "is fantastic, highly recommended",
    "was a real pleasure",
    "went perfectly, thank you",
    "was so good that we came back twice",
    "is excellent value for money",
    "was beautifully done",
)
_NEGATIVE = (
    "was a complete disaster",
    "ruined my whole day",
    "was rude and painfully slow",
    "is the worst I have ever tried",
    "was a total waste of money",
    "broke after two days",
    "left me furious",
    "was dull and boring",
    "never answered a single call",
    "was dirty and overpriced",
    "was a huge disappointment",
    "made me feel sick",
    "is awful, avoid it",
    "was cancelled without any apology",
    "was terrible",
    "felt cheap and nasty",
    "kept us waiting for hours for nothing",
    "was a miserable experience",
    "lost my luggage again",
    "was utterly useless",
)
_NEUTRAL = (
    "is scheduled for Tuesday at 10am",
    "was mentioned in the quarterly report",
    "has a new version number",
    "will be discussed at the next meeting",
    "is available in three colours",
    "was announced this morning",
    "arrives on Thursday",
    "is described on page four of the manual",
    "was moved to the second floor",
    "is listed under the travel section",
)
# Hand-written, varied on purpose: clear and mixed, short and long, review and tweet style.
_VARIED: tuple[tuple[str, Label], ...] = (
    ("I absolutely loved this movie, the acting was superb.", "positive"),
    ("This was the worst service I have ever received.", "negative"),
    ("Not bad at all, better than I expected!", "positive"),
    ("I can't believe how boring and predictable the plot was.", "negative"),
    ("@united thanks for getting me home early, great crew", "positive"),
    ("@airline my bag is lost again and nobody answers the phone", "negative"),
    ("What a wonderful, moving film.", "positive"),
    ("It's a mess: dull, overlong and painfully unfunny.", "negative"),
    ("Best purchase I've made all year, highly recommend.", "positive"),
    ("The food was cold and the waiter was rude.", "negative"),
    ("An intelligent, beautifully shot and deeply felt story.", "positive"),
    ("Flight delayed 4 hours, no explanation, no food vouchers.", "negative"),
    ("Thank you so much for the quick reply!", "positive"),
    ("The package arrived on Tuesday.", "neutral"),
    ("The meeting has been moved to 3pm.", "neutral"),
)


def _sample() -> tuple[tuple[str, Label], ...]:
    """Every opinion on every subject in three styles (a sentence, a tweet, a shout), and plain statements of
    fact in two."""
    rows: list[tuple[str, Label]] = list(_VARIED)
    for subject in _SUBJECTS:
        for phrases, label in ((_POSITIVE, "positive"), (_NEGATIVE, "negative")):
            for phrase in phrases:
                opinion = f"{subject} {phrase}"
                for text in (
                    f"{opinion}.",
                    f"@support {opinion[0].lower()}{opinion[1:]} #travel",
                    f"{opinion}!!",
                ):
                    rows.append((text, label))  # type: ignore[arg-type]  # the phrase lists are of their label
        for fact in _NEUTRAL:
            rows.extend(
                ((f"{subject} {fact}.", "neutral"), (f"@support {subject.lower()} {fact}", "neutral"))
            )
    return tuple(rows)


SAMPLE: tuple[tuple[str, Label], ...] = _sample()
SAMPLE_TEXTS: tuple[str, ...] = tuple(text for text, _ in SAMPLE)
SAMPLE_LABELS: tuple[Label, ...] = tuple(label for _, label in SAMPLE)
# Changes whenever the sample does, so a remembered verdict on an older sample is not reused.
SAMPLE_FINGERPRINT = hashlib.sha256("\n".join(f"{t}\t{label}" for t, label in SAMPLE).encode()).hexdigest()[
    :16
]


def agreement(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """The share of equal labels; nothing to compare is no agreement."""
    if not reference:
        return 0.0
    return sum(a == b for a, b in zip(reference, candidate, strict=True)) / len(reference)


def margin(scored: Scored) -> float:
    """How far the top class's probability is ahead of the runner-up's."""
    top = sorted(scored.scores.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0


class Verdict(msgspec.Struct, frozen=True):
    """What a fast path did on the sample beside fp32: remembered with its export, so a later start or a
    one-shot command does not load fp32 to check it again. `agreement` leaves out the `ties`: texts on which
    fp32 itself is within TIE_MARGIN of its runner-up, which any rounding tips (int8 does, on real data too),
    and texts whose label the model does not have (neutral for a binary model), on which its answer is
    arbitrary; neither says anything of a broken path. Accuracy counts every text."""

    agreement: float
    accuracy: float
    reference_accuracy: float
    texts: int
    ties: int
    sample: str = SAMPLE_FINGERPRINT

    @classmethod
    def of(
        cls, reference: Sequence[Scored], candidate: Sequence[Scored], gold: Sequence[str] = SAMPLE_LABELS
    ) -> Verdict:
        labels = {label for scored in reference for label in scored.scores}
        decided = [
            index
            for index, scored in enumerate(reference)
            if margin(scored) >= TIE_MARGIN and gold[index] in labels
        ]
        expected = [reference[index].label for index in decided]
        found = [candidate[index].label for index in decided]
        truth = [gold[index] for index in decided]
        return cls(
            agreement=agreement(expected, found),
            accuracy=agreement(truth, found),
            reference_accuracy=agreement(truth, expected),
            texts=len(gold),
            ties=len(gold) - len(decided),
        )

    def refusal(self) -> str | None:
        """None when the path may serve, else why not."""
        if self.agreement < MIN_AGREEMENT:
            return (
                f"its labels agreed with fp32 on {self.agreement:.1%} of the {self.texts - self.ties} "
                f"self-check texts that fp32 decides clearly (at least {MIN_AGREEMENT:.0%} needed)"
            )
        if self.accuracy < self.reference_accuracy - MAX_ACCURACY_DROP:
            return (
                f"its accuracy on the {self.texts} self-check texts was {self.accuracy:.3f} against fp32's "
                f"{self.reference_accuracy:.3f} (at most {MAX_ACCURACY_DROP} lower allowed)"
            )
        return None
