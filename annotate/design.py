"""Study design: which subject meets which prompt, which items each stage serves, and the
researcher's choices about them (the attributes an item asks about, the responses a stage-3
item compares, items withdrawn from a stage).

Every function runs in one transaction. An item can only be changed or withdrawn while nobody
has been assigned it: judgments refer to what it showed.
"""

from __future__ import annotations

import random
import secrets
import zlib
from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from annotate.models import Assignment, Item
from annotate.selectors import item_attribute_choices
from judgments.selectors import attributes_accepted_by_humans, relevant_attributes_by_humans
from personalization.models import Attribute, Prompt, Response, Stage, Study, StudyStage, Subject, SubjectPrompt

# Stage 3 compares the generic response with one personalized response; when a pair has several,
# the first mode found in this order is used.
PERSONALIZED_MODE_PREFERENCE = (
    Response.Mode.ALL_ATTRIBUTES,
    Response.Mode.SELECTED_ATTRIBUTES,
    Response.Mode.HUMAN_RELEVANT_ATTRIBUTES,
)


def _degrees(total: int, count: int, rng: random.Random) -> list[int]:
    """`total` split over `count` slots as evenly as possible, the larger shares placed at random."""
    base, extra = divmod(total, count)
    degrees = [base + 1] * extra + [base] * (count - extra)
    rng.shuffle(degrees)
    return degrees


def _pairing(subject_ids: list[int], prompt_ids: list[int], study: Study, seed: int) -> list[tuple[int, int]]:
    """A random bipartite pairing within the study's caps.

    Uses the fewest pairs that meet both minimums, spread as evenly as possible, then connects
    greedily (each subject, most demanding first, takes the prompts with the most remaining
    demand, ties broken at random). For near-equal degree sequences like these the greedy
    construction always succeeds (Gale-Ryser), so the caps are met exactly.
    """
    n_subjects, n_prompts = len(subject_ids), len(prompt_ids)
    low = max(n_subjects * study.prompts_per_subject_min, n_prompts * study.subjects_per_prompt_min)
    high = min(n_subjects * study.prompts_per_subject_max, n_prompts * study.subjects_per_prompt_max)
    # Even shares: no subject can need more prompts than exist, nor a prompt more subjects.
    subject_top, prompt_top = -(-low // n_subjects), -(-low // n_prompts)
    if low > high or subject_top > n_prompts or prompt_top > n_subjects:
        raise ValidationError(
            f"Study design: {n_subjects} subject(s) and {n_prompts} prompt(s) cannot meet the caps "
            f"({study.prompts_per_subject_min}-{study.prompts_per_subject_max} prompts per subject, "
            f"{study.subjects_per_prompt_min}-{study.subjects_per_prompt_max} subjects per prompt): "
            f"that needs at least {low} pair(s), {subject_top} per subject and {prompt_top} per prompt."
        )
    rng = random.Random(seed)  # noqa: S311 - a reproducible research design, not a secret
    subject_need = dict(zip(subject_ids, _degrees(low, n_subjects, rng), strict=True))
    prompt_need = dict(zip(prompt_ids, _degrees(low, n_prompts, rng), strict=True))
    tiebreak = {pid: rng.random() for pid in prompt_ids}
    pairs: list[tuple[int, int]] = []
    order = sorted(subject_ids, key=lambda sid: (-subject_need[sid], rng.random()))
    for sid in order:
        ranked = sorted(prompt_ids, key=lambda pid: (-prompt_need[pid], tiebreak[pid]))
        chosen = [pid for pid in ranked if prompt_need[pid] > 0][: subject_need[sid]]
        if len(chosen) < subject_need[sid]:
            raise ValidationError(f"Study design: could not pair subject {sid} within the caps (seed {seed}).")
        for pid in chosen:
            prompt_need[pid] -= 1
            pairs.append((sid, pid))
        for pid in prompt_ids:
            tiebreak[pid] = rng.random()
    return pairs


def study_design_pairs(*, study: Study, seed: int | None = None) -> list[SubjectPrompt]:
    """Pairs the study's subjects with its prompts under the per-subject and per-prompt caps.

    The seed (given, or drawn at random) is stored in Study.pairing_seed so the design can be
    reproduced. Idempotent: when the study already has pairs, they are returned unchanged if
    `seed` is None or equals the recorded seed; asking for a different seed is a
    ValidationError (responses and judgments may already hang off the existing pairs).
    """
    with transaction.atomic():
        # Row lock on the study: two concurrent designs of the same study cannot both pair it.
        Study.objects.select_for_update().filter(pk=study.pk).first()
        existing = list(SubjectPrompt.objects.filter(subject__study=study).order_by("subject_id", "prompt_id"))
        if existing:
            study.refresh_from_db(fields=["pairing_seed"])
            if seed is not None and seed != study.pairing_seed:
                raise ValidationError(
                    f"Study design: the study already has {len(existing)} pair(s) made with seed "
                    f"{study.pairing_seed}; it cannot be re-paired with seed {seed}."
                )
            return existing
        subject_ids = list(Subject.objects.filter(study=study).order_by("id").values_list("id", flat=True))
        prompt_ids = list(Prompt.objects.filter(study=study).order_by("id").values_list("id", flat=True))
        if not subject_ids or not prompt_ids:
            raise ValidationError(
                f"Study design: the study has {len(subject_ids)} subject(s) and {len(prompt_ids)} prompt(s); "
                "it needs at least one of each."
            )
        seed = secrets.randbelow(2**31) if seed is None else seed
        pairs = _pairing(subject_ids, prompt_ids, study, seed)
        SubjectPrompt.objects.bulk_create([SubjectPrompt(subject_id=s, prompt_id=p) for s, p in pairs])
        study.pairing_seed = seed
        study.save(update_fields=["pairing_seed", "updated_at"])
        return list(SubjectPrompt.objects.filter(subject__study=study).order_by("subject_id", "prompt_id"))


def _item_seed(study: Study, stage: int, target_id: int) -> int:
    return zlib.crc32(f"{study.pk}:{stage}:{target_id}".encode())


def _merged_attributes_by_subject(study: Study) -> dict[int, list[int]]:
    by_subject: dict[int, list[int]] = defaultdict(list)
    rows = Attribute.objects.filter(subject__study=study, level=Attribute.Level.MERGED).order_by("subject_id", "id")
    for subject_id, attribute_id in rows.values_list("subject_id", "id"):
        by_subject[subject_id].append(attribute_id)
    return by_subject


def items_build(*, study: Study, stage: int, personalized_mode: str | None = None) -> int:
    """Creates the missing Items of a stage from the study's data; returns how many were created.

    - stage 1: one item per subject with merged attributes (no gating);
    - stage 2: one item per paired prompt, pooling the merged attributes of every subject paired
      with it; if the stage is gated, only attributes stage 1 accepted;
    - stage 3: one item per pair with a generic and a personalized response (all_attributes
      preferred, then selected_attributes, then human_relevant_attributes); its attributes are
      those the personalized response was conditioned on, if gated only those stage 2 judged
      relevant to the prompt. `personalized_mode` makes stage 3 use only responses of that
      mode (pairs without one get no item);
    Items with no attribute to judge are not created. Existing items are left as they are
    (annotators may already be judging them), so running it again creates only what is new.
    """
    stage = int(stage)
    if stage not in Stage.values:
        raise ValidationError(f"stage: {stage!r} is not a stage (1, 2 or 3).")
    preference: tuple[Response.Mode, ...] = PERSONALIZED_MODE_PREFERENCE
    if personalized_mode:
        if personalized_mode not in PERSONALIZED_MODE_PREFERENCE:
            raise ValidationError(
                f"personalized_mode: {personalized_mode!r} is not a personalized response mode; expected one of "
                f"{', '.join(PERSONALIZED_MODE_PREFERENCE)}."
            )
        preference = (Response.Mode(personalized_mode),)
    settings = StudyStage.objects.filter(study=study, stage=stage).order_by("pk").first()
    k = settings.judgments_per_item if settings else StudyStage._meta.get_field("judgments_per_item").default
    gated = bool(settings and settings.gate_on_previous_stage)

    planned: list[tuple[Item, list[int]]] = []
    with transaction.atomic():
        if stage == Stage.CORRECTNESS:
            have = set(Item.objects.filter(study=study, stage=stage).values_list("subject_id", flat=True))
            for subject_id, attribute_ids in _merged_attributes_by_subject(study).items():
                if subject_id not in have:
                    item = Item(study=study, stage=stage, subject_id=subject_id, k=k)
                    planned.append((item, attribute_ids))
        elif stage == Stage.RELEVANCE:
            have = set(Item.objects.filter(study=study, stage=stage).values_list("prompt_id", flat=True))
            merged = _merged_attributes_by_subject(study)
            accepted = attributes_accepted_by_humans(study=study) if gated else None
            pooled: dict[int, list[int]] = defaultdict(list)
            for prompt_id, subject_id in (
                SubjectPrompt.objects.filter(subject__study=study)
                .order_by("prompt_id", "subject_id")
                .values_list("prompt_id", "subject_id")
            ):
                pooled[prompt_id].extend(a for a in merged.get(subject_id, []) if accepted is None or a in accepted)
            for prompt_id, attribute_ids in pooled.items():
                if prompt_id not in have and attribute_ids:
                    planned.append((Item(study=study, stage=stage, prompt_id=prompt_id, k=k), attribute_ids))
        else:
            relevant = relevant_attributes_by_humans(study=study) if gated else None
            responses: dict[int, dict[str, Response]] = defaultdict(dict)
            for response in (
                Response.objects.filter(pair__subject__study=study)
                # A subquery, not a list of ids: SQLite caps the number of query parameters.
                .exclude(pair_id__in=Item.objects.filter(study=study, stage=stage).values("pair_id"))
                .select_related("pair")
                .order_by("pair_id", "-created_at", "-id")
            ):
                # Newest response of each mode wins when a pair was generated more than once.
                responses[response.pair_id].setdefault(response.mode, response)
            conditioned: dict[int, list[int]] = defaultdict(list)
            chosen: dict[int, tuple[Response, Response]] = {}
            for pair_id, by_mode in responses.items():
                generic = by_mode.get(Response.Mode.GENERIC)
                personalized = next((by_mode[m] for m in preference if m in by_mode), None)
                if generic is not None and personalized is not None:
                    chosen[pair_id] = (generic, personalized)
            through = Response.conditioned_on.through
            wanted = {p.pk for _, p in chosen.values()}
            for response_id, attribute_id in (
                through.objects.filter(response__pair__subject__study=study)
                .order_by("attribute_id")
                .values_list("response_id", "attribute_id")
                .iterator(chunk_size=5000)
            ):
                if response_id in wanted:
                    conditioned[response_id].append(attribute_id)
            for pair_id, (generic, personalized) in chosen.items():
                attribute_ids = conditioned.get(personalized.pk, [])
                if relevant is not None:
                    keep = relevant.get(personalized.pair.prompt_id, set())
                    attribute_ids = [a for a in attribute_ids if a in keep]
                if attribute_ids:
                    item = Item(
                        study=study,
                        stage=stage,
                        pair_id=pair_id,
                        generic_response=generic,
                        personalized_response=personalized,
                        k=k,
                    )
                    planned.append((item, attribute_ids))
        for item, _ in planned:
            item.seed = _item_seed(study, stage, item.subject_id or item.prompt_id or item.pair_id or 0)
        Item.objects.bulk_create([item for item, _ in planned], batch_size=1000)
        Item.attributes.through.objects.bulk_create(
            [
                Item.attributes.through(item_id=item.pk, attribute_id=attribute_id)
                for item, attribute_ids in planned
                for attribute_id in dict.fromkeys(attribute_ids)
            ],
            batch_size=5000,
        )
    return len(planned)


def _lock_untouched(*, study: Study, item_ids: Iterable[int]) -> list[Item]:
    """Row locks on the study's items (in id order), or ValidationError naming those already assigned.

    The lock keeps a claim from assigning an item while it changes: claims lock the item they
    take with SKIP LOCKED, and first-person claims lock it too before inserting.
    """
    ids = sorted(set(item_ids))
    items = list(Item.objects.select_for_update().filter(study=study, pk__in=ids).order_by("pk"))
    missing = sorted(set(ids) - {item.pk for item in items})
    if missing:
        raise ValidationError(f"items: {', '.join(map(str, missing))} not in study {study.name!r}.")
    touched = sorted(
        Assignment.objects.filter(item_id__in=ids).values_list("item_id", flat=True).distinct().order_by("item_id")
    )
    if touched:
        raise ValidationError(
            f"items: {', '.join(map(str, touched))} already went to annotators, so they stay as they are "
            "(judgments refer to what they showed)."
        )
    return items


def item_choose(
    *,
    study: Study,
    item_id: int,
    attribute_ids: Iterable[int],
    generic_response_id: int | None = None,
    personalized_response_id: int | None = None,
) -> Item:
    """Sets what an untouched item shows: its attributes and, for stage 3, the two responses.

    Attributes must be among item_attribute_choices (at least one; withdraw the item to show
    none). Stage-3 responses must answer the item's pair: a generic one and a personalized one
    (any other mode). Raises ValidationError naming the field; nothing changes on error.
    """
    with transaction.atomic():
        (item,) = _lock_untouched(study=study, item_ids=[item_id])
        chosen = sorted(set(attribute_ids))
        if not chosen:
            raise ValidationError("attributes: choose at least one attribute, or withdraw the item.")
        allowed = set(item_attribute_choices(item=item).filter(pk__in=chosen).values_list("pk", flat=True))
        foreign = [a for a in chosen if a not in allowed]
        if foreign:
            raise ValidationError(
                f"attributes: {', '.join(map(str, foreign))} are not merged attributes of the subject(s) "
                f"this item is about."
            )
        if item.stage == Stage.PREFERENCE:
            responses = {r.pk: r for r in Response.objects.filter(pair_id=item.pair_id)}
            generic_id = generic_response_id or item.generic_response_id
            personalized_id = personalized_response_id or item.personalized_response_id
            generic, personalized = responses.get(generic_id or 0), responses.get(personalized_id or 0)
            if generic is None or generic.mode != Response.Mode.GENERIC:
                raise ValidationError(f"generic_response: {generic_id} is not a generic response to this pair.")
            if personalized is None or personalized.mode == Response.Mode.GENERIC:
                raise ValidationError(
                    f"personalized_response: {personalized_id} is not a personalized response to this pair."
                )
            item.generic_response, item.personalized_response = generic, personalized
            item.save(update_fields=["generic_response", "personalized_response"])
        elif generic_response_id or personalized_response_id:
            raise ValidationError(
                f"responses: only stage 3 items compare responses (this is a stage {item.stage} item)."
            )
        item.attributes.set(chosen)
    return item


def items_withdraw(*, study: Study, item_ids: Iterable[int], withdrawn: bool = True) -> int:
    """Withdraws untouched items from their stage (or, with withdrawn=False, puts them back).

    A withdrawn item is never offered, is left out of progress counts, and stays withdrawn when
    the stage is built again. All or nothing: if any item was already assigned, none changes.
    Returns how many items changed.
    """
    with transaction.atomic():
        items = _lock_untouched(study=study, item_ids=item_ids)
        changed = [item.pk for item in items if item.withdrawn != withdrawn]
        Item.objects.filter(pk__in=changed).update(withdrawn=withdrawn)
    return len(changed)
