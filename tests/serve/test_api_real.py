"""The HTTP API on the real path: the real model and index, in-process and as a real `qabot serve` on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.serve.app import create_app
from tests.live import free_port, stop
from tests.fakes import FAKE_MODEL

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_real_answerer_over_http(real_settings, real_answerer) -> None:
    with TestClient(create_app(real_settings, real_answerer, poll_seconds=0)) as c:
        r = c.post("/ask", json={"question": "Why did Gojek choose Knative?", "top_k": 5})
        assert r.status_code == 200
        body = r.json()
        assert body["answered"] is True
        assert any(cit["adopter"].lower() == "gojek" for cit in body["citations"])
        assert {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])} == {cit["n"] for cit in body["citations"]}
        first = body["citations"][0]
        src = c.get(f"/sources/{first['chunk_id']}").json()
        assert src["text"] == first["text"] and src["source"] == first["source"]
        assert " ".join(first["quote"].split()) in " ".join(src["text"].split())

        off = c.post("/ask", json={"question": "What is the best recipe for banana bread with walnuts?"}).json()
        assert off["answered"] is False and off["citations"] == []

        found = c.get("/search", params={"q": "model serving on Kubernetes", "k": 5}).json()["results"]
        assert len(found) == 5 and any(p["project"] == "KServe" for p in found)
        assert c.get("/interviews").json()["count"] == len(real_answerer.index.manifest.files)


def test_qabot_serve_on_loopback(real_settings, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(QABOT_CORPUS_DIR=str(real_settings.corpus_dir), QABOT_INDEX_DIR=str(real_settings.index_dir),
               QABOT_STATE_DIR=str(tmp_path / "var"), QABOT_ENCODER_DIR=os.environ["QABOT_ENCODER_DIR"],
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"qabot serve exited early:\n{Path(log.name).read_text()}"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "qabot serve never became ready"
            time.sleep(0.25)
        with httpx.Client(base_url=base, timeout=30) as http:
            r = http.post("/ask", json={"question": "What drew Gojek to Knative?"})
            assert r.status_code == 200
            body = r.json()
            assert body["answered"] is True and body["citations"]
            assert any(c["adopter"].lower() == "gojek" for c in body["citations"])
            assert http.post("/ask", json={"question": " "}).status_code == 422
            assert http.get("/").headers["content-type"].startswith("text/html")
            assert 'route="/ask"' in http.get("/metrics").text
    finally:
        stop(proc, timeout=20)
    output = Path(log.name).read_text()
    assert proc.returncode == 0, output
    assert re.search(r"request route=/ask method=POST status=200 latency_ms=[\d.]+ answered=True", output), output
    assert "Gojek to Knative" not in output  # question text is not logged by default


def test_qabot_serve_names_a_missing_slack_token_without_traceback(fake_settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_"))}
    env.update(QABOT_CORPUS_DIR=str(fake_settings.corpus_dir), QABOT_INDEX_DIR=str(fake_settings.index_dir),
               QABOT_MODEL=FAKE_MODEL, SLACK_SIGNING_SECRET="s3cret", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "bot", "serve", "--port", "0"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    assert "SLACK_BOT_TOKEN" in proc.stderr and "Traceback" not in proc.stderr
