from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from personalization.models import Study


def _config(html: str) -> dict:
    match = re.search(r'<script id="work-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page passes its configuration through json_script"
    return json.loads(match.group(1))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_member_gets_the_screen_shell_with_api_urls(annotator_client: Client, populated: Study, stage: int) -> None:
    response = annotator_client.get(f"/studies/{populated.pk}/stages/{stage}/work/")
    assert response.status_code == 200
    html = response.content.decode()
    config = _config(html)
    assert config["stage"] == stage
    assert config["mode"] == "work"
    assert config["urls"]["next"] == f"/api/studies/{populated.pk}/stages/{stage}/next/"
    assert config["urls"]["submit"] == f"/api/assignments/{config['idPlaceholder']}/submit/"
    assert 'type="module"' in html and "js/annotate/work.js" in html
    # CSP: no inline script bodies or style attributes.
    assert "style=" not in html
    assert re.findall(r"<script(?![^>]*(src=|application/json))", html) == []


def test_stage_3_shell_carries_the_caution_and_no_mode_labels(annotator_client: Client, populated: Study) -> None:
    html = annotator_client.get(f"/studies/{populated.pk}/stages/3/work/").content.decode()
    assert "Mentioning an attribute does not by itself make a response better." in html
    assert "Response A" in html and "Response B" in html
    assert "generic" not in html.lower()


def test_unknown_stage_is_404(annotator_client: Client, populated: Study) -> None:
    assert annotator_client.get(f"/studies/{populated.pk}/stages/4/work/").status_code == 404


def test_outsider_gets_404(outsider_client: Client, populated: Study) -> None:
    assert outsider_client.get(f"/studies/{populated.pk}/stages/1/work/").status_code == 404


def test_an_owner_who_does_not_annotate_is_sent_back_with_a_reason(owner_client: Client, populated: Study) -> None:
    response = owner_client.get(f"/studies/{populated.pk}/stages/1/work/", follow=True)
    assert response.redirect_chain[-1][0] == f"/studies/{populated.pk}/"
    assert b"Only the study&#x27;s annotators are given work" in response.content
    assert owner_client.get(f"/api/studies/{populated.pk}/stages/1/next/").status_code == 404
