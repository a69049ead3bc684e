"""Access helpers: the one choke point per object type. Each answers 404 to anyone not allowed,
so an outsider cannot even learn that a study or assignment exists."""

from __future__ import annotations

from typing import Literal, TypeVar, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import Http404

from annotate.models import Assignment, Item
from personalization.models import Study

M = TypeVar("M", bound=Model)
AnyUser = AbstractBaseUser | AnonymousUser


def in_study(user: AnyUser, role: Literal["owners", "annotators"], study_ref: str = "study_id") -> Exists:
    """A condition: the user is one of the owners (or annotators) of the study that `study_ref`
    (a field of the filtered rows) points to. A subquery, not a join, so it never multiplies rows."""
    through = getattr(Study, role).through
    return Exists(through.objects.filter(study_id=OuterRef(study_ref), user_id=user.pk))


def first_or_404(rows: QuerySet[M], *, user: AnyUser, what: str) -> M:
    """The one row the (already access-filtered) queryset finds, or Http404 naming what was asked for."""
    found = rows.first() if user.is_authenticated else None
    if found is None:
        raise Http404(f"No such {what}.")
    return found


def study_get_for_member(*, user: AnyUser, study_id: int) -> Study:
    """The study if the user owns or annotates it; Http404 otherwise."""
    member = Q(in_study(user, "owners", "pk")) | Q(in_study(user, "annotators", "pk"))
    return first_or_404(Study.objects.filter(member, pk=study_id), user=user, what="study")


def study_get_for_annotator(*, user: AnyUser, study_id: int) -> Study:
    """The study if the user is one of its annotators; Http404 otherwise. Only annotators are given
    work: an owner who wants to annotate adds themselves, so every judgment comes from someone the
    study counts as an annotator."""
    rows = Study.objects.filter(in_study(user, "annotators", "pk"), pk=study_id)
    return first_or_404(rows, user=user, what="study")


def study_get_for_owner(*, user: AnyUser, study_id: int) -> Study:
    """The study if the user owns it; Http404 otherwise (annotators included)."""
    return first_or_404(Study.objects.filter(in_study(user, "owners", "pk"), pk=study_id), user=user, what="study")


def assignment_get_for_annotator(*, user: AnyUser, assignment_id: int) -> Assignment:
    """The assignment if it is the user's own and they are still a member of its study; Http404 otherwise.

    Carries `by_annotator`: whether the user is still one of the study's annotators (an owner who
    is not may open and change their earlier judgments, but is given no new work)."""
    member = Q(in_study(user, "owners")) | Q(in_study(user, "annotators"))
    # Only what every caller needs: PostgreSQL spent ~5 ms planning the eight-way join this used
    # to be, on every submit and heartbeat; the payload loads the rest when it needs it.
    rows = (
        Assignment.objects.select_related("study", "item")
        .filter(member, pk=assignment_id, annotator_id=user.pk)
        # Whether they may be given more work (annotators only), in the same query.
        .annotate(by_annotator=in_study(user, "annotators"))
    )
    assignment = first_or_404(rows, user=user, what="assignment")
    # The assignment is the user's own, so the user we hold is its annotator: no query to load it.
    assignment.annotator = cast(User, user)
    return assignment


def item_get_for_owner(*, user: AnyUser, item_id: int) -> Item:
    """The item if the user owns its study; Http404 otherwise (annotators included)."""
    rows = Item.objects.select_related("study").filter(in_study(user, "owners"), pk=item_id)
    return first_or_404(rows, user=user, what="item")
