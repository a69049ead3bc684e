"""Access helpers: the one choke point per object type. Each answers 404 to anyone not allowed,
so an outsider cannot even learn that a study or assignment exists."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from annotate.models import Assignment, Item
from personalization.models import Study


def _member_filter(user: AbstractBaseUser) -> Q:
    owners = Study.owners.through.objects.filter(study_id=OuterRef("pk"), user_id=user.pk)
    annotators = Study.annotators.through.objects.filter(study_id=OuterRef("pk"), user_id=user.pk)
    return Q(Exists(owners)) | Q(Exists(annotators))


def study_get_for_member(*, user: AbstractBaseUser | AnonymousUser, study_id: int) -> Study:
    """The study if the user owns or annotates it; Http404 otherwise."""
    if not user.is_authenticated:
        raise Http404("No such study.")
    study = Study.objects.filter(_member_filter(user), pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def study_get_for_annotator(*, user: AbstractBaseUser | AnonymousUser, study_id: int) -> Study:
    """The study if the user is one of its annotators; Http404 otherwise. Only annotators are given
    work: an owner who wants to annotate adds themselves, so every judgment comes from someone the
    study counts as an annotator."""
    if not user.is_authenticated:
        raise Http404("No such study.")
    annotates = Study.annotators.through.objects.filter(study_id=OuterRef("pk"), user_id=user.pk)
    study = Study.objects.filter(Exists(annotates), pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def study_get_for_owner(*, user: AbstractBaseUser | AnonymousUser, study_id: int) -> Study:
    """The study if the user owns it; Http404 otherwise (annotators included)."""
    if not user.is_authenticated:
        raise Http404("No such study.")
    owned = Study.owners.through.objects.filter(study_id=OuterRef("pk"), user_id=user.pk)
    study = Study.objects.filter(Exists(owned), pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def assignment_get_for_annotator(*, user: AbstractBaseUser | AnonymousUser, assignment_id: int) -> Assignment:
    """The assignment if it is the user's own and they are still a member of its study; Http404 otherwise."""
    if not user.is_authenticated:
        raise Http404("No such assignment.")
    owners = Study.owners.through.objects.filter(study_id=OuterRef("study_id"), user_id=user.pk)
    annotators = Study.annotators.through.objects.filter(study_id=OuterRef("study_id"), user_id=user.pk)
    assignment = (
        # Only what every caller needs: PostgreSQL spent ~5 ms planning the eight-way join this
        # used to be, on every submit and heartbeat; the payload loads the rest when it needs it.
        Assignment.objects.select_related("study", "item")
        .filter(Q(Exists(owners)) | Q(Exists(annotators)), pk=assignment_id, annotator_id=user.pk)
        .first()
    )
    if assignment is None:
        raise Http404("No such assignment.")
    # The assignment is the user's own, so the user we hold is its annotator: no query to load it.
    assignment.annotator = cast(User, user)
    return assignment


def item_get_for_owner(*, user: AbstractBaseUser | AnonymousUser, item_id: int) -> Item:
    """The item if the user owns its study; Http404 otherwise (annotators included)."""
    if not user.is_authenticated:
        raise Http404("No such item.")
    owned = Study.owners.through.objects.filter(study_id=OuterRef("study_id"), user_id=user.pk)
    item = Item.objects.select_related("study").filter(Exists(owned), pk=item_id).first()
    if item is None:
        raise Http404("No such item.")
    return item
