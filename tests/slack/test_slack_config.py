"""Slack configuration: tokens only from Settings, clear errors for missing ones, and the app manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.answer.answerer import Answerer
from bot.config import ConfigError, Settings
from bot.slack import EVENTS_PATH, mount
from bot.slack.app import SlackConfigError, create_slack_app
from tests.conftest import ROOT
from tests.slack_fake import BOT_USER_ID, FakeSlack, event_body, sign

MANIFESTS = {"http": ROOT / "slack" / "manifest.yaml", "socket": ROOT / "slack" / "manifest.socket.yaml"}



@pytest.mark.parametrize("changes, missing", [
    ({}, "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set"),
    ({"slack_bot_token": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
    ({"slack_signing_secret": "s"}, "SLACK_BOT_TOKEN is not set"),
    ({"slack_bot_token": "xoxp-user-token", "slack_signing_secret": "s"}, "SLACK_BOT_TOKEN must be a bot token"),
])
def test_http_mode_names_the_missing_variable(fake_settings: Settings, fake_answerer: Answerer,
                                              changes: dict, missing: str) -> None:
    with pytest.raises(SlackConfigError, match=missing) as info:
        create_slack_app(fake_settings.replace(**changes), fake_answerer)
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize("changes, missing", [
    ({"slack_bot_token": "xoxb-1"}, "SLACK_APP_TOKEN is not set"),
    ({"slack_app_token": "xapp-1"}, "SLACK_BOT_TOKEN is not set"),
    ({"slack_bot_token": "xoxb-1", "slack_app_token": "xoxb-2"}, "SLACK_APP_TOKEN must be an app-level token"),
])
def test_socket_mode_names_the_missing_variable(fake_settings: Settings, fake_answerer: Answerer,
                                                changes: dict, missing: str) -> None:
    with pytest.raises(SlackConfigError, match=missing):
        create_slack_app(fake_settings.replace(**changes), fake_answerer, socket_mode=True)


def test_oauth_variables_in_the_environment_are_refused(fake_settings: Settings, fake_answerer: Answerer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1.2")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "s")
    settings = fake_settings.replace(slack_bot_token="xoxb-1", slack_signing_secret="s")
    with pytest.raises(SlackConfigError, match="SLACK_CLIENT_ID"):
        create_slack_app(settings, fake_answerer)


def test_mount_is_off_when_slack_is_not_configured(fake_settings: Settings, fake_answerer: Answerer) -> None:
    app = FastAPI()
    assert mount(app, fake_settings, fake_answerer) is False
    assert not any(getattr(r, "path", None) == EVENTS_PATH for r in app.routes)


def test_bolt_uses_the_settings_not_the_environment(fake_settings: Settings, fake_answerer: Answerer,
                                                    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret-from-env")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    settings = fake_settings.replace(slack_bot_token="xoxb-from-settings", slack_signing_secret="settings-secret",
                                     slack_api_url=fake_slack.url.rstrip("/"))  # SLACK_API_URL without the slash
    app = FastAPI()
    assert mount(app, settings, fake_answerer) is True
    client = TestClient(app)
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0GENERAL", "ts": "1.000100",
             "text": f"<@{BOT_USER_ID}> why did Acme want scale to zero?"}
    body = event_body(event, "EvEnv1")
    headers = {"Content-Type": "application/json"}
    assert client.post(EVENTS_PATH, content=body, headers={**headers, **sign("secret-from-env", body)}
                       ).status_code == 401
    assert client.post(EVENTS_PATH, content=body, headers={**headers, **sign("settings-secret", body)}
                       ).status_code == 200
    post = fake_slack.wait_for("chat.postMessage")[0]
    assert post.token == "xoxb-from-settings"
    assert {c.token for c in fake_slack.calls} == {"xoxb-from-settings"}


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_manifest_grants_what_the_bot_uses(kind: str) -> None:
    manifest = yaml.safe_load(MANIFESTS[kind].read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, reactions.add/remove, /ask, app_mention, message events and conversations.replies
    assert {"chat:write", "reactions:write", "commands", "app_mentions:read", "channels:history",
            "groups:history", "im:history", "mpim:history"} <= scopes
    settings = manifest["settings"]
    assert {"app_mention", "message.channels", "message.groups", "message.im", "message.mpim"} <= set(
        settings["event_subscriptions"]["bot_events"])
    assert settings["interactivity"]["is_enabled"] is True
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [Settings().slack_command]
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    urls = [settings["event_subscriptions"].get("request_url"), settings["interactivity"].get("request_url"),
            manifest["features"]["slash_commands"][0].get("url")]
    if kind == "socket":
        assert settings["socket_mode_enabled"] is True and urls == [None, None, None]
    else:
        assert settings["socket_mode_enabled"] is False
        assert all(u and u.startswith("https://") and u.endswith(EVENTS_PATH) for u in urls)


def test_the_two_manifests_differ_only_in_transport() -> None:
    http, socket = (yaml.safe_load(p.read_text()) for p in (MANIFESTS["http"], MANIFESTS["socket"]))
    for m in (http, socket):
        m["settings"].pop("socket_mode_enabled")
        m["settings"]["event_subscriptions"].pop("request_url", None)
        m["settings"]["interactivity"].pop("request_url", None)
        m["features"]["slash_commands"][0].pop("url", None)
    assert json.dumps(http, sort_keys=True) == json.dumps(socket, sort_keys=True)


def test_docs_walk_through_both_transports() -> None:
    doc = (ROOT / "README.md").read_text()
    assert "## Add qabot to Slack" in doc
    for needle in ("slack/manifest.yaml", "slack/manifest.socket.yaml", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
                   "SLACK_APP_TOKEN", "qabot slack", "qabot serve", "/slack/events", "QABOT_PUBLIC_URL",
                   "qabot feedback"):
        assert needle in doc, needle
    assert Path(ROOT / "slack" / "manifest.yaml").exists()
