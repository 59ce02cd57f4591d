"""Fusion: named signals per passage, one dot product with fitted weights, and the weights file itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.search.fusion import SIGNALS, WEIGHTS_FILE, FusionWeights, fuse, load_weights

from conftest import DEV_SET


def test_weights_round_trip_and_refuse_unknown_signals() -> None:
    weights = FusionWeights({"dense": 0.5, "body": 1.25}, repeat_penalty=0.2, fit={"method": "test"},
                            answerability={"x": 1}, relevance={"y": 2})
    again = FusionWeights.from_json(weights.to_json())
    assert again == weights
    assert again.vector()[SIGNALS.index("body")] == np.float32(1.25)
    assert again.vector()[SIGNALS.index("heading")] == 0.0  # a signal the file does not name weighs nothing
    bad = json.loads(weights.to_json())
    bad["weights"]["dnese"] = 1.0
    with pytest.raises(ValueError, match="dnese"):
        FusionWeights.from_json(json.dumps(bad))


def test_fused_score_is_the_signals_dotted_with_the_weights(fake_answerer) -> None:
    retriever = fake_answerer._current()
    fusion = FusionWeights({name: float(i + 1) / 10 for i, name in enumerate(SIGNALS)})
    ranked = retriever.with_fusion(fusion)
    F, _ = ranked.features("What drew Acme to the project? scale to zero")
    assert F.shape == (len(retriever.index.chunks), len(SIGNALS))
    scores = ranked.score("What drew Acme to the project? scale to zero")
    np.testing.assert_allclose(scores.fused, fuse(F, fusion.vector()), rtol=1e-6)


def test_named_adopter_signal_marks_exactly_its_passages(fake_answerer) -> None:
    retriever = fake_answerer._current()
    chunks = retriever.index.chunks
    adopter = chunks[0].adopter
    F, scores = retriever.features(f"What does {adopter} say about the project?")
    named = F[:, SIGNALS.index("named")]
    assert scores.adopters and set(np.flatnonzero(named)) == {i for i, c in enumerate(chunks) if c.adopter == adopter}
    local = F[:, SIGNALS.index("local_body")]
    assert not local[named == 0].any()  # within-interview signals exist only inside the named interview


def test_fitted_weights_file_loads_and_holds_no_question_from_the_dev_set() -> None:
    fusion = load_weights(WEIGHTS_FILE)
    assert fusion is not None and set(fusion.weights) <= set(SIGNALS) and np.isfinite(fusion.vector()).all()
    assert fusion.fit["folds"] >= 2 and "out_of_fold" in fusion.fit  # provenance travels with the weights
    text = WEIGHTS_FILE.read_text(encoding="utf-8").lower()
    if DEV_SET.exists():
        for line in DEV_SET.read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            assert f'"{q["id"].lower()}"' not in text and q["question"].lower() not in text


def test_no_weights_means_hand_set_params_and_a_bad_file_is_an_error(tmp_path: Path) -> None:
    assert load_weights(None) is None
    with pytest.raises(ValueError, match="QABOT_FUSION_WEIGHTS"):
        load_weights(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_weights(tmp_path / "bad.json")


def test_answerer_ranks_by_the_configured_weights(fake_answerer, tmp_path: Path) -> None:
    from bot.answer.answerer import Answerer

    assert fake_answerer._current().fusion is None  # the default: hand-set params
    path = tmp_path / "w.json"
    path.write_text(FusionWeights({"body": 1.0, "named": 5.0}).to_json())
    answerer = Answerer(fake_answerer.settings.replace(fusion_weights=path), embedder=fake_answerer.embedder)
    answerer.reload()
    retriever = answerer._current()
    assert retriever.fusion is not None and retriever.fusion.weights["named"] == 5.0
    answer = answerer.ask("What did Globex say about documentation?")
    assert answer.answered and answer.citations[0].adopter.startswith("Globex")
