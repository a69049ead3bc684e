// Builds the item's DOM from the API payload. Every piece of conversation or model text goes in
// through text nodes (never innerHTML): it is untrusted.

export const CHOICES = {
  1: [
    { value: "makes_sense", label: "Makes sense", keys: ["1"] },
    { value: "maybe", label: "Maybe", keys: ["2"] },
    { value: "doesnt_make_sense", label: "Doesn't make sense", keys: ["3"] },
  ],
  2: [
    { value: "yes", label: "Yes", keys: ["y", "1"] },
    { value: "no", label: "No", keys: ["n", "2"] },
  ],
  3: [
    { value: "1", label: "B much worse", keys: ["1"] },
    { value: "2", label: "B worse", keys: ["2"] },
    { value: "3", label: "No difference", keys: ["3"] },
    { value: "4", label: "B better", keys: ["4"] },
    { value: "5", label: "B much better", keys: ["5"] },
  ],
};

// Turns longer than this start collapsed so one long paste does not bury the rest of the history.
export const COLLAPSE_OVER_CHARS = 600;
const ROLE_LABELS = { user: "User", assistant: "Assistant", system: "System" };

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function kbd(text) {
  return el("kbd", { "aria-hidden": "true" }, text);
}

function formatTimestamp(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function setTurnExpanded(turn, expanded) {
  const button = turn.querySelector(".turn-toggle");
  if (!button) return;
  turn.classList.toggle("collapsed", !expanded);
  button.setAttribute("aria-expanded", expanded ? "true" : "false");
  button.textContent = expanded ? "Show less" : "Show the whole turn";
}

// Stage 1: the conversation history. Returns turn id -> {element, label}.
export function renderConversations(container, conversations) {
  container.replaceChildren();
  const turns = new Map();
  conversations.forEach((conversation, c) => {
    const meta = [conversation.model, formatTimestamp(conversation.timestamp)].filter(Boolean).join(" · ");
    const list = el("ol", { className: "turns" });
    conversation.turns.forEach((turn, t) => {
      const role = ROLE_LABELS[turn.role] || turn.role;
      const label = `Conversation ${c + 1}, turn ${t + 1} (${role})`;
      const textId = `turn-text-${turn.id}`;
      const item = el(
        "li",
        { className: `turn role-${turn.role}`, id: `turn-${turn.id}`, tabindex: "-1", "aria-label": label },
        el("span", { className: "role" }, role, el("span", { className: "turn-number" }, ` · turn ${t + 1}`)),
        el("div", { className: "turn-text prewrap", id: textId }, turn.content),
      );
      if (turn.content.length > COLLAPSE_OVER_CHARS) {
        const toggle = el("button", { type: "button", className: "turn-toggle link", "aria-controls": textId });
        toggle.addEventListener("click", () => setTurnExpanded(item, item.classList.contains("collapsed")));
        item.append(toggle);
        setTurnExpanded(item, false);
      }
      list.append(item);
      turns.set(turn.id, { element: item, label });
    });
    container.append(
      el(
        "section",
        { className: "conversation", "aria-label": `Conversation ${c + 1}` },
        el("h3", { className: "conversation-title" }, `Conversation ${c + 1}`, meta ? el("span", { className: "muted" }, ` · ${meta}`) : null),
        list,
      ),
    );
  });
  return turns;
}

// One attribute card per attribute; returns [{id, element, inputs, note}] in display order.
export function renderAttributes(container, stage, attributes, turns = new Map()) {
  container.replaceChildren();
  return attributes.map((attribute, index) => {
    const headingId = `attr-${attribute.id}-text`;
    const card = el("fieldset", {
      className: "attr card",
      id: `attr-${attribute.id}`,
      tabindex: "0",
      dataset: { attrId: String(attribute.id) },
    });
    card.append(
      el(
        "legend",
        { id: headingId },
        el("span", { className: "attr-number" }, `${index + 1}.`),
        " ",
        el("span", { className: "attr-text" }, attribute.text),
      ),
    );
    const evidence = [];
    if (stage === 1) {
      if (attribute.reason) {
        card.append(el("p", { className: "reason" }, el("span", { className: "label" }, "Model's reason: "), attribute.reason));
      }
      if (typeof attribute.confidence === "number") {
        card.append(el("p", { className: "confidence muted small" }, `Model's confidence: ${Math.round(attribute.confidence * 100)}%`));
      }
      const ids = attribute.evidence_turn_ids || [];
      if (ids.length) {
        const links = ids.map((turnId) => {
          const turn = turns.get(turnId);
          if (!turn) return el("span", { className: "muted" }, "a turn not shown here");
          const button = el("button", { type: "button", className: "evidence-link", dataset: { turnId: String(turnId) } }, turn.label);
          evidence.push({ button, turn: turn.element });
          return button;
        });
        card.append(el("div", { className: "evidence" }, el("span", { className: "label" }, "Evidence: "), links));
      }
    }
    const choices = el("div", { className: `choices choices-${stage}` });
    const inputs = CHOICES[stage].map((choice) => {
      const input = el("input", {
        type: "radio",
        name: `answer-${attribute.id}`,
        value: choice.value,
        "aria-keyshortcuts": choice.keys.join(" "),
      });
      const label = el(
        "label",
        { className: `choice choice-${choice.value}` },
        input,
        el("span", { className: "choice-label" }, stage === 3 ? `${choice.value} · ${choice.label}` : choice.label),
        stage === 3 ? null : kbd(choice.keys[0]),
      );
      choices.append(label);
      return input;
    });
    card.append(choices);
    let note = null;
    if (stage === 1) {
      const noteId = `attr-${attribute.id}-note`;
      note = el("input", { type: "text", id: noteId, className: "attr-note", autocomplete: "off", maxlength: "2000" });
      card.append(
        el("div", { className: "attr-note-row" }, el("label", { for: noteId, className: "small" }, "Note on this attribute ", el("span", { className: "muted" }, "(optional)")), note),
      );
    }
    container.append(card);
    return { id: attribute.id, element: card, inputs, note, evidence };
  });
}
