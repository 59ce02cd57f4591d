"""The citation cut and the refusal model: fitted logistic models applied to an answer's evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.answer.coverage import ANSWERABILITY_FEATURES, Answerability, Evidence, evidence_features
from bot.answer.relevance import HIT_FEATURES, RelevanceCut, hit_features
from bot.ingest.chunking import Chunk
from bot.search.retriever import Hit


def _hit(score: float, sentence: float, source: str = "a.md") -> Hit:
    chunk = Chunk(chunk_id=f"{source}-{score}", source=source, project="P", adopter="A", section="S",
                  question="Q?", heading_path=("S", "Q?"), text="text", embed_text="P A Q? text",
                  line_start=1, line_end=1)
    return Hit(chunk, score, dense=sentence, sentence=sentence)


def test_cut_keeps_the_first_and_drops_passages_far_behind_it() -> None:
    # Only "how far behind the first" matters in this model: a hit more than ~1 behind drops out.
    coef = [-4.0 if name == "fused_behind_first" else 0.0 for name in HIT_FEATURES]
    cut = RelevanceCut(tuple(coef), intercept=4.0, threshold=0.5, mean=(0.0,) * len(HIT_FEATURES),
                       scale=(1.0,) * len(HIT_FEATURES))
    hits = [_hit(5.0, 0.6), _hit(4.8, 0.5, "b.md"), _hit(2.0, 0.7, "c.md")]
    assert [h.chunk.source for h in cut.cut(hits)] == ["a.md", "b.md"]
    assert cut.cut([]) == []
    assert hit_features(hits[1], hits[0], 1)[HIT_FEATURES.index("same_interview")] == 0.0


def test_models_fit_on_other_features_are_refused() -> None:
    cut = RelevanceCut((0.0,) * len(HIT_FEATURES), 0.0, 0.5, (0.0,) * len(HIT_FEATURES), (1.0,) * len(HIT_FEATURES))
    stale = {**cut.to_dict(), "features": ["fused_behind_first"]}
    with pytest.raises(ValueError, match="refit"):
        RelevanceCut.from_dict(stale)
    model = Answerability((0.0,) * len(ANSWERABILITY_FEATURES), 0.0, 0.5, (0.0,) * len(ANSWERABILITY_FEATURES),
                          (1.0,) * len(ANSWERABILITY_FEATURES))
    assert Answerability.from_dict(model.to_dict()) == model
    with pytest.raises(ValueError, match="refit"):
        Answerability.from_dict({**model.to_dict(), "features": ["top_dense"]})


def test_answerability_follows_its_evidence() -> None:
    # A model that reads only the best sentence cosine: more similar evidence, more likely answered.
    coef = tuple(3.0 if name == "top_sentence" else 0.0 for name in ANSWERABILITY_FEATURES)
    model = Answerability(coef, 0.0, 0.5, tuple(0.4 if n == "top_sentence" else 0.0 for n in ANSWERABILITY_FEATURES),
                          (0.1,) * len(ANSWERABILITY_FEATURES))
    weak = Evidence(top_sentence=0.2, top_dense=0.2, term_coverage=0.1, missing=("x",), unknown=(), n_terms=3)
    strong = replace(weak, top_sentence=0.7)
    assert model.probability(weak) < 0.5 < model.probability(strong)
    assert not model.answered(weak) and model.answered(strong)
    asks = replace(weak, asks_quantity=True, quantity_in_top=False)
    assert evidence_features(asks)[ANSWERABILITY_FEATURES.index("quantity_gap")] == 1.0
    assert evidence_features(replace(asks, quantity_in_top=True))[ANSWERABILITY_FEATURES.index("quantity_gap")] == 0.0
