// The annotation screen: fetches an item from the API, renders it, records answers, drafts and
// active time, keeps the lease alive, submits, and shows the next item that came back with the
// submit response. Everything is reachable from the keyboard; "?" lists the shortcuts.

import { ActiveTimer } from "./activity.js";
import { request, urlFor } from "./api.js";
import { CHOICES, renderAttributes, renderConversations, setTurnExpanded } from "./render.js";

const config = JSON.parse(document.getElementById("work-config").textContent);
const STAGE = config.stage;
const EDITING = config.mode === "edit";
const HEARTBEAT_MS = 30_000;
// A page left open and untouched this long counts as abandoned: heartbeats stop, the lease
// runs out and the item goes back to the pool. Any key press or click resumes them.
const ABANDONED_AFTER_MS = 10 * 60_000;
const DRAFT_DELAY_MS = 800;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("item-form"),
  attributes: $("attributes"),
  conversations: $("conversations"),
  conversationList: $("conversation-list"),
  promptText: $("prompt-text"),
  responseA: $("response-a"),
  responseB: $("response-b"),
  missing: $("missing"),
  note: $("note"),
  flag: $("flag"),
  submit: $("submit-button"),
  skip: $("skip-button"),
  status: $("status"),
  error: $("error"),
  loading: $("loading"),
  done: $("done"),
  editDone: $("edit-done"),
  retry: $("retry-button"),
  guidelines: $("guidelines"),
  guidelinesText: $("guidelines-text"),
  guidelinesVersion: $("guidelines-version"),
  progressMine: $("progress-mine"),
  progressMineLabel: $("progress-mine-label"),
  progressStudy: $("progress-study"),
  progressStudyLabel: $("progress-study-label"),
  help: $("help-dialog"),
  helpButton: $("help-button"),
  skipDialog: $("skip-dialog"),
  skipReason: $("skip-reason"),
  saveState: $("save-state"),
};

const state = {
  payload: null,
  cards: [],
  current: 0,
  busy: false,
  draftTimer: null,
  draftDirty: false,
  lastHeartbeat: 0,
  heartbeatInFlight: false,
};
const timer = new ActiveTimer();
// answer key -> answer value for this stage ("y" -> "yes", "1" -> "makes_sense", ...)
const ANSWER_KEYS = new Map(CHOICES[STAGE].flatMap((choice) => choice.keys.map((key) => [key, choice.value])));

function assignmentUrl(name) {
  return urlFor(config.urls[name], config.idPlaceholder, state.payload.assignment_id);
}

// ---- messages ---------------------------------------------------------------------------

function announce(text) {
  ui.status.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

// ---- rendering --------------------------------------------------------------------------

function setProgress(progress, holding) {
  if (!progress) return;
  // mine_available leaves out the item on screen, which is already mine.
  const toGo = progress.mine_available + (holding ? 1 : 0);
  ui.progressMine.max = Math.max(1, progress.mine_done + toGo);
  ui.progressMine.value = progress.mine_done;
  ui.progressMineLabel.textContent = `You: ${progress.mine_done} done · ${toGo} to go`;
}

// The study-wide counts come from their own endpoint, fetched in the background at most every
// STUDY_PROGRESS_MS: counting a large study's items must never delay the next item.
const STUDY_PROGRESS_MS = 15_000;
let studyProgressAt = 0;

async function refreshStudyProgress() {
  if (Date.now() - studyProgressAt < STUDY_PROGRESS_MS) return;
  studyProgressAt = Date.now();
  try {
    const progress = await request("GET", config.urls.progress);
    ui.progressStudy.max = Math.max(1, progress.items_total);
    ui.progressStudy.value = progress.items_done;
    ui.progressStudyLabel.textContent = `Study: ${progress.items_done} of ${progress.items_total} items complete`;
  } catch {
    studyProgressAt = 0; // a progress bar is not worth an error message; try again next item
  }
}

function setGuidelines(guidelines) {
  if (guidelines && guidelines.text) {
    ui.guidelinesText.textContent = guidelines.text;
    ui.guidelinesVersion.textContent = `(version ${guidelines.version})`;
    openIfNew(guidelines.version);
  } else {
    ui.guidelinesText.textContent = "The researcher has not written guidelines for this stage yet.";
    ui.guidelinesVersion.textContent = "";
  }
}

// The guidelines open by themselves the first time an annotator sees a version of them: on
// their first item, and again whenever the researcher publishes a change.
function openIfNew(version) {
  const key = `attune:guidelines-seen:${config.studyId}:${STAGE}`;
  let seen = 0;
  try {
    seen = Number(window.localStorage.getItem(key)) || 0;
    if (version > seen) window.localStorage.setItem(key, String(version));
  } catch {
    return; // storage disabled: leave them as they are
  }
  if (version <= seen) return;
  ui.guidelines.open = true;
  if (seen) announce(`The guidelines for this stage changed (now version ${version}).`);
}

function show(payload) {
  state.payload = payload;
  showError("");
  ui.loading.hidden = true;
  ui.done.hidden = true;
  ui.editDone.hidden = true;
  ui.form.hidden = false;
  setGuidelines(payload.guidelines);
  setProgress(payload.progress, payload.status === "leased");
  refreshStudyProgress(); // not awaited: the item shows at once

  let turns = new Map();
  if (STAGE === 1) {
    $("first-person").hidden = !payload.first_person;
    turns = renderConversations(ui.conversationList, payload.conversations || []);
    ui.conversations.scrollTop = 0;
  } else {
    ui.promptText.textContent = payload.prompt ? payload.prompt.text : "";
  }
  if (STAGE === 3) {
    ui.responseA.textContent = payload.responses ? payload.responses.A : "";
    ui.responseB.textContent = payload.responses ? payload.responses.B : "";
  }
  state.cards = renderAttributes(ui.attributes, STAGE, payload.attributes || [], turns);
  state.cards.forEach((card, index) => wireCard(card, index));

  const saved = EDITING ? null : payload.draft;
  applyValues(saved && Object.keys(saved).length ? saved : fromExisting(payload));
  // The server keeps the largest active time reported, so continue from what it already has.
  const savedMs = saved && Number.isFinite(saved.active_ms) ? saved.active_ms : 0;
  timer.reset(Math.max(savedMs, payload.active_ms || 0));
  state.draftDirty = false;
  ui.saveState.textContent = "";
  state.lastHeartbeat = Date.now();

  if (config.readOnly) {
    // Answers are locked; the evidence links and expand buttons keep working for reading.
    for (const input of ui.form.querySelectorAll("input, textarea")) input.disabled = true;
    ui.submit.disabled = true;
    announce("This study is closed: judgments can no longer be changed.");
  }
  // A new item starts at the top (on a phone: the history or prompt comes first), with the
  // keyboard already on the first open attribute.
  window.scrollTo(0, 0);
  const first = state.cards.findIndex((card) => !answerOf(card));
  focusCard(first === -1 ? 0 : first, { scroll: false });
}

function fromExisting(payload) {
  // Editing: start from what I answered before (the API gives stage 3 answers as shown, B vs A).
  return { answers: payload.existing || {}, attribute_notes: payload.attribute_notes || {}, ...(payload.feedback || {}) };
}

function applyValues(values) {
  const answers = values.answers || {};
  const notes = values.attribute_notes || {};
  for (const card of state.cards) {
    const answer = answers[String(card.id)];
    for (const input of card.inputs) input.checked = input.value === answer;
    if (card.note) card.note.value = notes[String(card.id)] || "";
    markAnswered(card);
  }
  ui.note.value = values.note || "";
  ui.flag.checked = Boolean(values.flag);
  if (ui.missing) ui.missing.value = values.missing_attributes || "";
}

function showDone() {
  state.payload = null;
  ui.form.hidden = true;
  ui.loading.hidden = true;
  ui.done.hidden = false;
  ui.progressMine.value = ui.progressMine.max;
  studyProgressAt = 0;
  refreshStudyProgress();
  $("done-heading").focus();
}

// ---- attribute cards --------------------------------------------------------------------

function answerOf(card) {
  const checked = card.inputs.find((input) => input.checked);
  return checked ? checked.value : "";
}

function markAnswered(card) {
  card.element.classList.toggle("answered", Boolean(answerOf(card)));
}

function wireCard(card, index) {
  card.element.addEventListener("focusin", () => setCurrent(index));
  card.element.addEventListener("click", (event) => {
    if (event.target === card.element) setCurrent(index);
  });
  for (const input of card.inputs) {
    input.addEventListener("change", () => {
      markAnswered(card);
      scheduleDraft();
    });
  }
  for (const { button, turn } of card.evidence) {
    const on = () => turn.classList.add("highlight");
    const off = () => turn.classList.remove("highlight");
    button.addEventListener("mouseenter", on);
    button.addEventListener("mouseleave", off);
    button.addEventListener("focus", on);
    button.addEventListener("blur", off);
    button.addEventListener("click", () => revealTurn(turn));
  }
}

function setCurrent(index) {
  if (index < 0 || index >= state.cards.length) return;
  state.current = index;
  state.cards.forEach((card, i) => card.element.classList.toggle("current", i === index));
  if (STAGE === 1) {
    for (const turn of ui.conversationList.querySelectorAll(".turn.evidence-current")) turn.classList.remove("evidence-current");
    const evidence = state.cards[index].evidence;
    for (const { turn } of evidence) turn.classList.add("evidence-current");
    // Side by side, bring the attribute's first evidence turn into the history panel's view.
    if (evidence.length && panelScrolls() && !visibleInPanel(evidence[0].turn)) scrollPanelTo(evidence[0].turn, false);
  }
}

function focusCard(index, { scroll = true } = {}) {
  if (!state.cards.length) return;
  const bounded = Math.max(0, Math.min(index, state.cards.length - 1));
  setCurrent(bounded);
  const card = state.cards[bounded].element;
  card.focus({ preventScroll: true });
  if (scroll) card.scrollIntoView({ block: "nearest" });
}

function moveCard(step) {
  // From outside the attribute list (Submit, a note), the first press returns to the attribute.
  const card = state.cards[state.current];
  const inside = card && card.element.contains(document.activeElement);
  focusCard(inside ? state.current + step : state.current);
}

function answerCurrent(value) {
  const card = state.cards[state.current];
  if (!card || config.readOnly) return;
  const input = card.inputs.find((candidate) => candidate.value === value);
  if (!input) return;
  input.checked = true;
  markAnswered(card);
  scheduleDraft();
  // Move on to the next attribute still open; when all are answered, Submit is next.
  const order = [...state.cards.keys()].map((i) => (state.current + 1 + i) % state.cards.length);
  const next = order.find((i) => !answerOf(state.cards[i]));
  if (next === undefined) {
    ui.submit.focus();
    announce("All attributes answered. Press Enter to submit.");
  } else {
    focusCard(next);
  }
}

// ---- stage 1: the conversation history ----------------------------------------------

function panelScrolls() {
  return ui.conversations && getComputedStyle(ui.conversations).overflowY === "auto";
}

function visibleInPanel(turn) {
  const panel = ui.conversations.getBoundingClientRect();
  const target = turn.getBoundingClientRect();
  return target.top >= panel.top && target.bottom <= panel.bottom;
}

function scrollPanelTo(turn, smooth) {
  const panel = ui.conversations.getBoundingClientRect();
  const target = turn.getBoundingClientRect();
  ui.conversations.scrollBy({ top: target.top - panel.top - 48, behavior: smooth ? "smooth" : "auto" });
}

function revealTurn(turn) {
  setTurnExpanded(turn, true);
  if (panelScrolls()) scrollPanelTo(turn, true);
  else turn.scrollIntoView({ block: "center", behavior: "smooth" });
  turn.classList.remove("flash");
  // Restart the flash animation on repeated clicks.
  void turn.offsetWidth;
  turn.classList.add("flash");
}

function toggleEvidence() {
  const card = state.cards[state.current];
  const turns = card ? card.evidence.map((entry) => entry.turn).filter((turn) => turn.querySelector(".turn-toggle")) : [];
  if (!turns.length) {
    announce("This attribute has no long evidence turn to expand.");
    return;
  }
  const expand = turns.some((turn) => turn.classList.contains("collapsed"));
  for (const turn of turns) setTurnExpanded(turn, expand);
  announce(expand ? "Evidence turns expanded." : "Evidence turns collapsed.");
}

// ---- drafts, heartbeat ------------------------------------------------------------------

function collectValues() {
  const answers = {};
  const notes = {};
  for (const card of state.cards) {
    const answer = answerOf(card);
    if (answer) answers[String(card.id)] = answer;
    if (card.note && card.note.value.trim()) notes[String(card.id)] = card.note.value.trim();
  }
  return {
    answers,
    attribute_notes: notes,
    note: ui.note.value.trim(),
    missing_attributes: ui.missing ? ui.missing.value.trim() : "",
    flag: ui.flag.checked,
    active_ms: timer.elapsedMs,
  };
}

function scheduleDraft() {
  if (EDITING || config.readOnly || !state.payload) return;
  state.draftDirty = true;
  ui.saveState.textContent = "Unsaved changes";
  window.clearTimeout(state.draftTimer);
  state.draftTimer = window.setTimeout(saveDraft, DRAFT_DELAY_MS);
}

async function saveDraft({ keepalive = false } = {}) {
  window.clearTimeout(state.draftTimer);
  if (!state.draftDirty || !state.payload || state.busy) return;
  state.draftDirty = false;
  const payload = state.payload;
  try {
    await request("POST", assignmentUrl("draft"), { draft: collectValues() }, { keepalive });
    if (state.payload === payload) ui.saveState.textContent = "Draft saved";
  } catch (error) {
    if (state.payload === payload) {
      state.draftDirty = true;
      ui.saveState.textContent = `Draft not saved: ${error.message}`;
    }
  }
}

async function heartbeat() {
  if (EDITING || !state.payload || state.busy || state.heartbeatInFlight) return;
  if (document.visibilityState !== "visible" || timer.idleMs > ABANDONED_AFTER_MS) return;
  state.lastHeartbeat = Date.now();
  state.heartbeatInFlight = true;
  try {
    await request("POST", assignmentUrl("heartbeat"));
  } catch (error) {
    showError(`Could not keep this item reserved for you (${error.message}). Your answers are still here; submit soon.`);
  } finally {
    state.heartbeatInFlight = false;
  }
}

// ---- loading, submitting, skipping ------------------------------------------------------

async function loadFirst() {
  ui.loading.hidden = false;
  try {
    const payload = EDITING
      ? await request("GET", urlFor(config.urls.assignment, config.idPlaceholder, config.assignmentId))
      : await request("POST", config.urls.next);
    if (payload) show(payload);
    else showDone();
  } catch (error) {
    ui.loading.hidden = true;
    showError(`Could not load an item: ${error.message}`);
  }
}

async function submit() {
  if (state.busy || !state.payload || config.readOnly) return;
  const values = collectValues();
  const open = state.cards.findIndex((card) => !values.answers[String(card.id)]);
  if (open !== -1) {
    const left = state.cards.filter((card) => !values.answers[String(card.id)]).length;
    showError(`Answer every attribute before submitting: ${left} still open (the first is number ${open + 1}).`);
    focusCard(open);
    return;
  }
  state.busy = true;
  ui.submit.disabled = true;
  window.clearTimeout(state.draftTimer);
  showError("");
  announce("Submitting…");
  try {
    const { active_ms: activeMs, ...fields } = values;
    const result = await request("POST", assignmentUrl("submit"), { ...fields, active_ms: activeMs });
    if (EDITING) {
      state.payload = null;
      ui.form.hidden = true;
      ui.editDone.hidden = false;
      announce("Changes saved.");
      $("edit-done-heading").focus();
    } else if (result && result.next) {
      show(result.next);
      announce("Submitted. Here is the next item.");
    } else {
      announce("Submitted.");
      showDone();
    }
  } catch (error) {
    showError(`Not submitted: ${error.message}`);
    announce("");
  } finally {
    state.busy = false;
    ui.submit.disabled = Boolean(config.readOnly);
  }
}

function openSkip() {
  if (EDITING || !state.payload || state.busy || !ui.skipDialog) return;
  ui.skipReason.value = "";
  // returnValue survives from the last opening; Esc leaves it untouched.
  ui.skipDialog.returnValue = "";
  ui.skipDialog.showModal();
  ui.skipReason.focus();
}

async function skip(reason) {
  state.busy = true;
  window.clearTimeout(state.draftTimer);
  showError("");
  try {
    const result = await request("POST", assignmentUrl("skip"), { reason });
    if (result && result.next) {
      show(result.next);
      announce("Skipped. Here is the next item.");
    } else {
      announce("Skipped.");
      showDone();
    }
  } catch (error) {
    showError(`Not skipped: ${error.message}`);
  } finally {
    state.busy = false;
  }
}

// ---- keyboard -------------------------------------------------------------------------

function isTextField(target) {
  if (target instanceof HTMLTextAreaElement) return true;
  if (target instanceof HTMLInputElement) return !["radio", "checkbox", "button", "submit"].includes(target.type);
  return Boolean(target && target.isContentEditable);
}

function onKeyDown(event) {
  if (event.defaultPrevented || event.isComposing) return;
  if (document.querySelector("dialog[open]")) return;
  const target = event.target;
  const working = state.payload && !ui.form.hidden;
  if (working && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    submit();
    return;
  }
  if (isTextField(target)) {
    // Esc, or Enter in a one-line note, hands the keyboard back to the attribute being judged.
    if (event.key === "Escape" || (event.key === "Enter" && target instanceof HTMLInputElement)) {
      event.preventDefault();
      focusCard(state.current);
    }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "?") {
    event.preventDefault();
    ui.help.showModal();
    return;
  }
  if (event.key === "g") {
    event.preventDefault();
    ui.guidelines.open = !ui.guidelines.open;
    return;
  }
  if (!working) return;

  const onCard = target instanceof HTMLElement && target.classList.contains("attr");
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (ANSWER_KEYS.has(key)) {
    event.preventDefault();
    answerCurrent(ANSWER_KEYS.get(key));
    return;
  }
  switch (key) {
    case "j":
      event.preventDefault();
      moveCard(1);
      break;
    case "k":
      event.preventDefault();
      moveCard(-1);
      break;
    case "ArrowDown":
    case "ArrowUp":
      // Arrow keys keep their usual meaning inside radio groups and for scrolling elsewhere.
      if (onCard) {
        event.preventDefault();
        moveCard(key === "ArrowDown" ? 1 : -1);
      }
      break;
    case "Enter":
      if (target === document.body || onCard || (target instanceof HTMLInputElement && target.type === "radio")) {
        event.preventDefault();
        submit();
      }
      break;
    case "s":
      event.preventDefault();
      openSkip();
      break;
    case "f":
      event.preventDefault();
      if (!config.readOnly) {
        ui.flag.checked = !ui.flag.checked;
        announce(ui.flag.checked ? "Item flagged." : "Flag removed.");
        scheduleDraft();
      }
      break;
    case "c":
      event.preventDefault();
      ui.note.focus();
      break;
    case "n":
      // Stage 2 uses n for "No" (handled above); stage 1 opens the attribute's note; stage 3 the item note.
      event.preventDefault();
      if (STAGE === 1 && state.cards[state.current]) state.cards[state.current].note.focus();
      else ui.note.focus();
      break;
    case "m":
      if (ui.missing) {
        event.preventDefault();
        ui.missing.focus();
      }
      break;
    case "e":
      if (STAGE === 1) {
        event.preventDefault();
        toggleEvidence();
      }
      break;
    case "v":
      if (STAGE === 1 && state.cards[state.current] && state.cards[state.current].evidence.length) {
        event.preventDefault();
        revealTurn(state.cards[state.current].evidence[0].turn);
      }
      break;
    default:
      break;
  }
}

// ---- wiring ------------------------------------------------------------------------------

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
ui.form.addEventListener("input", (event) => {
  if (event.target.type !== "radio") scheduleDraft();
});
ui.helpButton.addEventListener("click", () => ui.help.showModal());
if (ui.skip) ui.skip.addEventListener("click", openSkip);
if (ui.skipDialog) {
  ui.skipDialog.addEventListener("close", () => {
    if (ui.skipDialog.returnValue === "skip") skip(ui.skipReason.value.trim());
    else focusCard(state.current);
  });
}
ui.retry.addEventListener("click", loadFirst);
document.addEventListener("keydown", onKeyDown);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") saveDraft({ keepalive: true });
  else if (Date.now() - state.lastHeartbeat > HEARTBEAT_MS) heartbeat();
});
window.addEventListener("pagehide", () => saveDraft({ keepalive: true }));
window.setInterval(heartbeat, HEARTBEAT_MS);
timer.start();
loadFirst();
