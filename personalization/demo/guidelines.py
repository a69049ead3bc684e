"""Version 1 of the demo study's annotation guidelines, one text per stage.

They follow the study's definitions: stage 1 asks whether an inferred attribute is supported by
the subject's conversations, stage 2 whether an attribute would change the answer to a new
request, stage 3 which of two responses serves the subject better.
"""

from __future__ import annotations

import re

from personalization.models import Stage


def unwrap(text: str) -> str:
    """Joins the hard-wrapped lines of each paragraph and list item, so the stored guideline reads
    well however a screen wraps it; blank lines and list items ("- ") keep their breaks."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        items: list[str] = []
        for line in block.splitlines():
            if line.startswith("- ") or not items:
                items.append(line.strip())
            else:
                items[-1] += " " + line.strip()
        blocks.append("\n".join(items))
    return "\n\n".join(blocks) + "\n"


STAGE_1_CORRECTNESS = """\
Stage 1: does this attribute make sense?

You see one person's conversations with an AI assistant and the attributes that a model inferred
about them (for example "Is vegetarian" or "Works night shifts"), each with the model's reason,
its confidence and the conversation turns it cites as evidence.

Read the conversations, then answer for each attribute: given what this person actually wrote,
does the attribute make sense?

- Makes sense: the conversations clearly support the attribute. The person says it, or it
  follows directly from what they say ("I'm on my third night shift this week" supports "Works
  night shifts").
- Maybe: the attribute is plausible but not established. The evidence is indirect, or a
  reasonable reader could draw a different conclusion.
- Doesn't make sense: the conversations do not support the attribute, contradict it, or the
  model read something into them that is not there.

Watch for over-generalization from a single mention. Asking for one risotto recipe does not make
someone a professional chef; writing a beer advertisement tagline does not mean someone works in
the beer industry; mentioning a city once does not mean they live there. When an attribute claims
much more than its evidence shows, choose "Doesn't make sense" (or "Maybe" if the stronger claim
is at least plausible).

Judge only what the user wrote. The assistant's replies are context, not evidence about the
person. Do not use the model's confidence to decide: it is shown so you can notice when it is
wrong. Sensitive inferences (health, religion, ethnicity, politics, sexuality) need explicit
support; a guess from indirect hints is "Doesn't make sense".

Use the note field when you are unsure or when the attribute is partly right (for example right
about the person but wrong about the detail). If the conversations clearly show something about
the person that no attribute captures, write it in the "missing attributes" box. Flag the item if
the conversation itself is broken or contains content you are uncomfortable with.
"""

STAGE_2_RELEVANCE = """\
Stage 2: would this attribute change the response?

You see a new request (a prompt) that someone might send to an assistant, and a list of
attributes inferred about several people (shuffled; you are not told whose they are; in a gated
study only those annotators accepted in stage 1).

For each attribute, answer the question: "Would this attribute change the response in any way,
explicitly or implicitly?" That is, if the assistant knew this attribute, would it answer
differently?

- YES: a good assistant would answer differently. The content, the examples, the level of detail,
  the tone, what it recommends or what it leaves out would change. Implicit changes count: a
  vegetarian asking "What should I cook tonight?" should get vegetarian dishes even if the answer
  never says the word "vegetarian".
- NO: the best answer is the same with or without the attribute. Knowing that someone lives in
  Chicago does not change how to fix a slow laptop.

Think about what an attentive friend who knows this fact would do differently, not about whether
the attribute could be mentioned. An attribute can be true and important and still be irrelevant
to this request. Judge each attribute on its own, not the combination.

Use the note field for borderline cases, for example when the attribute would only matter for
one small part of the answer.
"""

STAGE_3_PREFERENCE = """\
Stage 3: which response is better for this person?

You see a prompt, the subject's attributes that were judged relevant to it, and two responses
(A and B, in random order). One may have been written with knowledge of the subject, the other
without; you are not told which.

For each relevant attribute, rate on a 1-5 scale how response B compares with response A for this
person with respect to that attribute:

- 1: B is much worse than A
- 2: B is somewhat worse
- 3: no difference
- 4: B is somewhat better
- 5: B is much better than A

Judge what the response does for the person, not what it says about them. Mentioning an attribute
does not by itself make a response better: "As a nurse, you might enjoy..." followed by generic
advice is no better than the generic advice. A response that quietly adapts its suggestions to the
person can be better without ever naming the attribute. Over-personalization counts against a
response: dragging in an attribute that does not belong, making assumptions beyond it, or being
less helpful on the actual request in order to sound personal.

Both responses must still answer the prompt: accuracy, completeness and clarity matter as they
would for anyone. Choose 3 when you cannot honestly tell them apart on an attribute.
"""

GUIDELINES_V1: dict[int, str] = {
    Stage.CORRECTNESS: unwrap(STAGE_1_CORRECTNESS),
    Stage.RELEVANCE: unwrap(STAGE_2_RELEVANCE),
    Stage.PREFERENCE: unwrap(STAGE_3_PREFERENCE),
}
