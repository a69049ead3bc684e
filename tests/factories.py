"""factory_boy factories for the domain objects. Every test area may use them."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User

from personalization import models as m


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-test-123")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Study

    name = factory.Sequence(lambda n: f"Study {n}")
    status = m.Study.Status.OPEN


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Subject

    study = factory.SubFactory(StudyFactory)
    external_id = factory.Sequence(lambda n: f"subject-{n}")
    source = "test"


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Conversation

    subject = factory.SubFactory(SubjectFactory)
    conversation_hash = factory.Sequence(lambda n: f"hash-{n}")


class TurnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Turn

    conversation = factory.SubFactory(ConversationFactory)
    index = factory.Sequence(lambda n: n)
    role = "user"
    content = "Hello there"


class AttributeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Attribute

    subject = factory.SubFactory(SubjectFactory)
    text = factory.Sequence(lambda n: f"Is interested in topic {n}")
    reason = "Mentioned it"
    confidence = 0.8


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Prompt

    study = factory.SubFactory(StudyFactory)
    text = factory.Sequence(lambda n: f"Write a short plan for task {n}.")
    source = "test"


class SubjectPromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.SubjectPrompt

    subject = factory.SubFactory(SubjectFactory)
    prompt = factory.SubFactory(PromptFactory, study=factory.SelfAttribute("..subject.study"))


class ModelRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.ModelRun

    study = factory.SubFactory(StudyFactory)
    step = m.ModelRun.Step.RELEVANCE
    model_name = "test-model"
    model_id = "test/model"
    backend = "hf_local"


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Response

    pair = factory.SubFactory(SubjectPromptFactory)
    mode = m.Response.Mode.GENERIC
    text = "A response."
