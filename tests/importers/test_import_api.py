"""POST /api/studies/<study_id>/imports/: owners import, everyone else gets 404 and nothing is stored."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from personalization.models import Attribute, Prompt, Study, Subject
from tests.importers.helpers import counts


def url(study: Study) -> str:
    return reverse("api-study-import", kwargs={"study_id": study.pk})


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_owner_imports_conversations_then_attributes(owner_client: Client, study: Study, wildchat_file: Path) -> None:
    response = owner_client.post(
        url(study),
        {"kind": "conversations", "file": upload("wc.jsonl", wildchat_file.read_bytes()), "source": "wildchat-up"},
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "kind": "conversations",
        "lines": 3,
        "created": {"subjects": 2, "conversations": 3, "turns": 7},
        "existing": {"subjects": 0, "conversations": 0},
    }
    assert set(Subject.objects.values_list("source", flat=True)) == {"wildchat-up"}

    line = {"user_id": "ip-a", "merged_attributes": [{"attribute": "Is vegetarian", "confidence": "low"}]}
    response = owner_client.post(
        url(study), {"kind": "attributes", "file": upload("a.jsonl", json.dumps(line).encode())}
    )
    assert response.status_code == 201, response.content
    assert response.json()["created"]["merged_attributes"] == 1
    assert Attribute.objects.get().confidence == 0.3


def test_owner_imports_prompts_csv_and_reimport_is_idempotent(owner_client: Client, study: Study) -> None:
    content = b"text,source_id\nPlan a picnic,1\nFix a slow laptop,2\n"
    data = {"kind": "prompts", "format": "csv", "source": "lima"}
    first = owner_client.post(url(study), {**data, "file": upload("p.csv", content)})
    second = owner_client.post(url(study), {**data, "file": upload("p.csv", content)})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["created"] == {"prompts": 0}
    assert second.json()["existing"] == {"prompts": 2}
    assert Prompt.objects.filter(study=study, source="lima").count() == 2


def test_bad_file_answers_400_with_errors_and_stores_nothing(owner_client: Client, study: Study) -> None:
    bad = b'{"user": "u1", "messages": [{"role": "user", "content": "hi"}]}\n{"user": "u2", "messages": []}\n'
    before = counts()
    response = owner_client.post(url(study), {"kind": "conversations", "file": upload("bad.jsonl", bad)})
    assert response.status_code == 400
    assert response.json() == {"errors": ["bad.jsonl:2: messages: empty conversation: it has no turns"], "total": 1}
    assert counts() == before


def test_invalid_form_fields_answer_400(owner_client: Client, study: Study) -> None:
    response = owner_client.post(url(study), {"kind": "attributes", "format": "csv", "file": upload("a.csv", b"x")})
    assert response.status_code == 400
    assert response.json()["errors"] == ["format: attributes imports accept: auto."]
    response = owner_client.post(url(study), {"kind": "votes"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {'kind: "votes" is not a valid choice.', "file: No file was submitted."}


def test_outsider_and_annotator_get_404_and_nothing_is_stored(
    outsider_client: Client, annotator_client: Client, study: Study, wildchat_file: Path
) -> None:
    before = counts()
    for client in (outsider_client, annotator_client):
        response = client.post(
            url(study), {"kind": "conversations", "file": upload("wc.jsonl", wildchat_file.read_bytes())}
        )
        assert response.status_code == 404
    assert counts() == before


def test_missing_study_is_404(owner_client: Client, study: Study) -> None:
    response = owner_client.post(reverse("api-study-import", kwargs={"study_id": study.pk + 1000}), {"kind": "prompts"})
    assert response.status_code == 404


def test_anonymous_gets_401_or_403_not_a_redirect(anon_client: Client, study: Study) -> None:
    response = anon_client.post(url(study), {"kind": "prompts", "file": upload("p.csv", b"text\nHi\n")})
    assert response.status_code in (401, 403)
    assert Prompt.objects.count() == 0


def test_token_client_can_import(owner: object, study: Study) -> None:
    token = Token.objects.create(user=owner)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(url(study), {"kind": "prompts", "file": upload("p.jsonl", b'{"text": "Hi"}\n')})
    assert response.status_code == 201


def test_schema_documents_the_import_endpoint(owner_client: Client) -> None:
    response = owner_client.get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    operation = json.loads(response.content)["paths"]["/api/studies/{study_id}/imports/"]["post"]
    assert operation["operationId"] == "study_import"
    assert set(operation["responses"]) == {"201", "400", "404"}
    assert "multipart/form-data" in operation["requestBody"]["content"]
