from __future__ import annotations

from django.test import Client

from annotate.services import assignment_next
from personalization.models import Study


def test_annotator_sees_a_card_per_stage_with_start_links(annotator_client: Client, populated: Study) -> None:
    response = annotator_client.get(f"/studies/{populated.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    for stage in (1, 2, 3):
        assert f"/studies/{populated.pk}/stages/{stage}/work/" in html
        assert f"Start stage {stage}" in html
    # Researcher links are for owners only.
    assert f"/studies/{populated.pk}/dashboard/" not in html
    assert f"/studies/{populated.pk}/design/" not in html


def test_a_held_lease_reads_continue(annotator_client: Client, annotator: object, populated: Study) -> None:
    assignment_next(study=populated, stage=2, annotator=annotator)
    html = annotator_client.get(f"/studies/{populated.pk}/").content.decode()
    assert "Continue stage 2" in html
    assert "Start stage 1" in html


def test_owner_gets_dashboard_setup_and_runs_links(owner_client: Client, populated: Study) -> None:
    html = owner_client.get(f"/studies/{populated.pk}/").content.decode()
    assert f"/studies/{populated.pk}/dashboard/" in html
    assert f"/studies/{populated.pk}/design/" in html
    assert f"/studies/{populated.pk}/runs/" in html
    # The owner is not an annotator of the fixture study: no work links.
    assert "/stages/1/work/" not in html


def test_closed_study_hands_out_no_work(annotator_client: Client, populated: Study) -> None:
    populated.status = Study.Status.CLOSED
    populated.save()
    html = annotator_client.get(f"/studies/{populated.pk}/").content.decode()
    assert "/stages/1/work/" not in html
    assert "no annotation work is handed out" in html


def test_outsider_gets_404(outsider_client: Client, populated: Study) -> None:
    assert outsider_client.get(f"/studies/{populated.pk}/").status_code == 404


def test_anonymous_is_sent_to_login(anon_client: Client, populated: Study) -> None:
    response = anon_client.get(f"/studies/{populated.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
