// autodo's web board: live updates and actions. Hand-written, no dependencies, no build step.
//
// The server renders every page and every part of a page. This module follows the event stream
// from the head the page was rendered at and, when something happens, fetches the part that
// changed (/parts/...) and patches it into the page in place, keeping focus, typed text and
// open menus. Actions go to the JSON API (/api/v1); its problem+json errors show as a notice.

const KINDS = [
  "task.created", "task.state", "task.lane", "run.queued", "run.started", "run.finished", "run.paused",
  "run.resumed", "run.interrupted", "run.taken_over", "agent.turn", "tool.result", "tool.retry",
  "message.sent", "message.delivered", "message.kept", "message.dropped", "inbox.opened", "inbox.answered",
  "inbox.cancelled", "budget.set", "budget.reached", "approval.used", "approval.refused",
  "approval.granted_for_run", "triage.failed", "message",
];
const TYPING = "input, textarea, select, [contenteditable]";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// ---------------------------------------------------------------- talking to the server

class ApiError extends Error {}

async function api(path, payload = {}) {
  const response = await fetch(`/api/v1${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
  });
  if (!response.ok) throw new ApiError(await problem(response));
  return response.json();
}

async function problem(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    return body.title || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function fetchPart(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (!response.ok) throw new ApiError(await problem(response));
  return response.text();
}

let noticeTimer = 0;
function notify(text, kind = "info") {
  const notice = $("#notice");
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, kind === "error" ? 8000 : 3500);
}

// Runs an action with its button disabled; errors become a notice.
async function act(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    notify(error instanceof ApiError ? error.message : `Could not reach autodo: ${error.message}`, "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------- patching parts in place

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

const keyOf = (node) => (node.nodeType === Node.ELEMENT_NODE ? node.dataset.key || node.id || null : null);

// Make `from` look like `to`, reusing elements (matched by data-key or id) so focus, typed text,
// open <details> and scroll positions survive. An element whose data-sig did not change is skipped.
function morph(from, to) {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
    from.replaceWith(to);
    return;
  }
  if (from.nodeType === Node.TEXT_NODE) {
    if (from.data !== to.data) from.data = to.data;
    return;
  }
  if (from.nodeType !== Node.ELEMENT_NODE) return;
  if (from.dataset.sig !== undefined && from.dataset.sig === to.dataset.sig) return;
  syncAttributes(from, to);
  morphChildren(from, to);
}

function syncAttributes(from, to) {
  for (const { name } of [...from.attributes]) {
    if (!to.hasAttribute(name) && name !== "open" && name !== "class") from.removeAttribute(name);
  }
  for (const { name, value } of [...to.attributes]) {
    if (name === "class") {
      const kept = from.classList.contains("current") ? " current" : "";
      from.className = value + kept;
    } else if (from.getAttribute(name) !== value) {
      from.setAttribute(name, value);
    }
  }
}

function morphChildren(from, to) {
  const keyed = new Map();
  for (const child of from.children) if (keyOf(child)) keyed.set(keyOf(child), child);
  let index = 0;
  for (const next of [...to.childNodes]) {
    const key = keyOf(next);
    const here = from.childNodes[index] || null;
    let current = key ? keyed.get(key) : here;
    if (key) keyed.delete(key);
    else if (current && keyOf(current)) current = null; // never reuse a keyed element for an unkeyed one
    if (!current) {
      from.insertBefore(next, here);
    } else {
      if (current !== here) from.insertBefore(current, here);
      morph(current, next);
    }
    index += 1;
  }
  while (from.childNodes.length > index) from.lastChild.remove();
}

function patch(region, html) {
  const target = region.cloneNode(false);
  target.append(fragment(html));
  morphChildren(region, target);
  decorate(region);
}

// One refresh at a time per part; events during a refresh cause exactly one more.
function refresher(load, delay = 120) {
  let timer = 0;
  let running = false;
  let again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      await load();
    } catch (error) {
      console.warn("refresh failed", error);
    } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = () => { clearTimeout(timer); timer = setTimeout(run, delay); };
  return schedule;
}

function partRefresher(region, url, delay) {
  return refresher(async () => patch(region, await fetchPart(url)), delay);
}

// ---------------------------------------------------------------- times

function duration(seconds) {
  const whole = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  if (whole < 86400) return `${Math.floor(whole / 3600)}h ${pad(Math.floor((whole % 3600) / 60))}m`;
  return `${Math.floor(whole / 86400)}d ${Math.floor((whole % 86400) / 3600)}h`;
}

function ago(date) {
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)}h ago`;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function localizeTimes(root = document) {
  for (const el of $$("time[datetime]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    el.title = date.toLocaleString();
    el.textContent = el.hasAttribute("data-relative")
      ? ago(date)
      : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }
}

const ticking = new WeakMap();
function tick() {
  const now = performance.now();
  for (const el of $$("[data-ticking]")) {
    const base = parseFloat(el.dataset.elapsed);
    let seen = ticking.get(el);
    if (!seen || seen.base !== base) {
      seen = { base, at: now };
      ticking.set(el, seen);
    }
    el.textContent = duration(base + (now - seen.at) / 1000);
  }
}

function decorate(root) {
  localizeTimes(root);
  tick();
}

// ---------------------------------------------------------------- the event stream

function follow(url, onEvent) {
  const live = $("#live");
  const show = (state, text) => {
    live.dataset.state = state;
    $(".live-text", live).textContent = text;
  };
  const source = new EventSource(`${url}?after=${document.body.dataset.head || 0}`);
  source.addEventListener("open", () => show("live", "Live"));
  source.addEventListener("error", () => show("down", "Reconnecting"));
  for (const kind of KINDS) {
    source.addEventListener(kind, (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        console.warn("bad event", error);
      }
    });
  }
  window.addEventListener("pagehide", () => source.close());
  return source;
}

const refreshInboxCount = refresher(async () => {
  const response = await fetch("/api/v1/inbox", { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const count = (await response.json()).length;
  const badge = $("#inbox-count");
  badge.textContent = String(count);
  badge.classList.toggle("zero", count === 0);
  badge.setAttribute("aria-label", `${count} waiting`);
}, 200);

// ---------------------------------------------------------------- actions shared by pages

const laneNames = { agent: "Agents do it", ask: "Ask me first", human: "I do it" };

async function moveTask(taskId, target, button) {
  const moved = await act(button, () =>
    target === "done" ? api(`/tasks/${taskId}/done`, {}) : api(`/tasks/${taskId}/lane`, { lane: target }),
  );
  if (moved) notify(target === "done" ? "Marked done" : `Moved to “${laneNames[target]}”`);
  return moved;
}

async function answerItem(form, submitter) {
  const itemId = form.dataset.item;
  const field = $("[data-answer]", form);
  const text = field.value.trim() || form.dataset.default || "";
  if (!text) {
    notify("Write an answer first: the agent reads it as it is", "error");
    field.focus();
    return;
  }
  const item = await act(submitter, () => api(`/inbox/${itemId}/answer`, { text }));
  if (item) itemSettled(form, item.kind === "question" ? "Answered; the agent carries on" : "Done");
}

async function decideItem(form, decision, submitter) {
  const itemId = form.dataset.item;
  if (decision === "deny") {
    const field = $("[data-answer]", form);
    const reason = field.value.trim();
    if (!reason) {
      notify("Say why you deny it: the agent reads the reason", "error");
      field.focus();
      return;
    }
    const item = await act(submitter, () => api(`/inbox/${itemId}/deny`, { reason }));
    if (item) itemSettled(form, "Denied; the agent reads your reason");
    return;
  }
  const item = await act(submitter, () => api(`/inbox/${itemId}/approve`, { for_run: decision === "approve-run" }));
  if (item) itemSettled(form, decision === "approve-run" ? "Approved for this run" : "Approved");
}

function itemSettled(form, text) {
  notify(text);
  const article = form.closest("article.item");
  const next = article && (article.nextElementSibling || article.previousElementSibling);
  if (article) article.remove();
  if (next && document.body.dataset.page === "inbox") select(next);
  refreshInboxCount();
  document.dispatchEvent(new CustomEvent("autodo:changed"));
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  const action = form.dataset.action;
  if (!action) return;
  event.preventDefault();
  const submitter = event.submitter || $("button[type=submit]", form);
  if (action === "answer") answerItem(form, submitter);
  else if (action === "deny") decideItem(form, "deny", submitter);
  else if (action === "add-task") addTask(form, submitter);
  else if (action === "steer") steer(form, submitter);
});

document.addEventListener("click", (event) => {
  const decide = event.target.closest("[data-decide]");
  if (decide) decideItem(decide.closest("form"), decide.dataset.decide, decide);
});

document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && field.matches("textarea")) {
    event.preventDefault();
    field.form?.requestSubmit();
  }
});

// ---------------------------------------------------------------- board

function initBoard() {
  const region = $("#board");
  const refreshBoard = partRefresher(region, "/parts/board");
  follow("/api/v1/events", (event) => {
    refreshBoard();
    if (event.kind.startsWith("inbox.")) refreshInboxCount();
  });
  document.addEventListener("autodo:changed", refreshBoard);

  region.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-move]");
    if (!button) return;
    const card = button.closest("[data-task]");
    button.closest("details").open = false;
    if (await moveTask(card.dataset.task, button.dataset.move, button)) refreshBoard();
  });
  enableDragging(region, refreshBoard);

  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !event.target.matches(TYPING)) {
      event.preventDefault();
      $("#new-title").focus();
    }
  });
  // A click elsewhere closes an open card menu.
  document.addEventListener("click", (event) => {
    for (const menu of $$(".card-menu[open]")) if (!menu.contains(event.target)) menu.open = false;
  });
}

function enableDragging(region, refreshBoard) {
  region.addEventListener("dragstart", (event) => {
    const card = event.target.closest?.("[data-task]");
    if (!card) return;
    event.dataTransfer.setData("text/x-autodo-task", card.dataset.task);
    event.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
  });
  region.addEventListener("dragend", (event) => event.target.closest?.("[data-task]")?.classList.remove("dragging"));
  region.addEventListener("dragover", (event) => {
    const column = event.target.closest("[data-drop]");
    if (!column || !event.dataTransfer.types.includes("text/x-autodo-task")) return;
    event.preventDefault();
    for (const other of $$(".drop-here", region)) if (other !== column) other.classList.remove("drop-here");
    column.classList.add("drop-here");
  });
  region.addEventListener("dragleave", (event) => {
    const column = event.target.closest("[data-drop]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-here");
  });
  region.addEventListener("drop", async (event) => {
    const column = event.target.closest("[data-drop]");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("drop-here");
    const taskId = event.dataTransfer.getData("text/x-autodo-task");
    if (taskId && (await moveTask(taskId, column.dataset.drop))) refreshBoard();
  });
}

async function addTask(form, submitter) {
  const lane = form.elements.lane.value;
  const payload = {
    title: form.elements.title.value.trim(),
    body: form.elements.body.value,
    blocked_by: [...form.elements.blocked_by.selectedOptions].map((option) => option.value).filter(Boolean),
    profile: form.elements.profile.value || null,
    labels: lane ? [`lane:${lane}`] : [],
  };
  if (!payload.title) {
    notify("Give the task a title: a short sentence saying what should be done", "error");
    form.elements.title.focus();
    return;
  }
  const task = await act(submitter, () => api("/tasks", payload));
  if (!task) return;
  form.elements.title.value = "";
  form.elements.body.value = "";
  const blockers = form.elements.blocked_by;
  for (const option of blockers.options) option.selected = false;
  $("option[disabled]", blockers)?.remove();
  blockers.append(new Option(task.title, task.id));
  notify(`Added “${task.title}”`);
  form.elements.title.focus();
  document.dispatchEvent(new CustomEvent("autodo:changed"));
}

// ---------------------------------------------------------------- task page

function initTask() {
  const head = $("#task-head");
  const taskId = head.dataset.task;
  const refreshHead = refresher(async () => {
    patch(head, await fetchPart(`/parts/tasks/${taskId}/head`));
    closeSteeringWhenEnded();
  });
  const changes = $("#changes");
  const refreshChanges = partRefresher(changes, changes.dataset.src, 400);
  const transcript = transcriptFollower(taskId);

  follow(`/api/v1/tasks/${taskId}/events`, (event) => {
    transcript(event.seq);
    refreshHead();
    if (event.kind.startsWith("inbox.")) refreshInboxCount();
    if (["tool.result", "run.finished", "task.state"].includes(event.kind)) refreshChanges();
  });
  document.addEventListener("autodo:changed", refreshHead);
  initTabs(refreshChanges);

  head.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-control]");
    if (!button) return;
    const action = button.dataset.control;
    if (action === "cancel" && !window.confirm("Cancel this task and stop its run? The workspace is kept.")) return;
    const task = await act(button, () => api(`/tasks/${taskId}/${action}`, {}));
    if (task) {
      notify(`Task ${task.state}`);
      refreshHead();
    }
  });
  head.addEventListener("change", async (event) => {
    const select = event.target.closest("[data-move-select]");
    if (!select || !select.value) return;
    if (await moveTask(taskId, select.value)) refreshHead();
    select.value = "";
  });
}

function initTabs(refreshChanges) {
  const tabs = $$("[role=tab]");
  const show = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(`#${other.getAttribute("aria-controls")}`).hidden = !selected;
    }
    if (tab.id === "tab-changes") refreshChanges();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      show(next);
    });
  }
}

// Appends transcript entries in sequence order, each exactly once; follows the bottom of the
// page only when the person is already there.
function transcriptFollower(taskId) {
  const list = $("#transcript");
  let from = null;
  const load = refresher(async () => {
    const after = from ?? Number(list.dataset.lastSeq);
    from = null;
    const html = await fetchPart(`/parts/tasks/${taskId}/transcript?after=${after}`);
    const atBottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 80;
    for (const entry of $$("li[data-seq]", fragment(html))) insertBySeq(list, entry);
    $("#transcript-empty").hidden = list.children.length > 0;
    if (atBottom) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, 60);
  return (seq) => {
    const last = Number(list.dataset.lastSeq);
    if (list.querySelector(`li[data-seq="${seq}"]`)) return;
    // An event older than the newest shown (a transaction that committed late) is fetched too.
    const after = seq <= last ? seq - 1 : last;
    from = from === null ? after : Math.min(from, after);
    load();
  };
}

function insertBySeq(list, entry) {
  const seq = Number(entry.dataset.seq);
  if (list.querySelector(`li[data-seq="${seq}"]`)) return;
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (Number(node.dataset.seq) < seq) break;
    before = node;
  }
  list.insertBefore(entry, before);
  decorate(entry);
  list.dataset.lastSeq = String(Math.max(Number(list.dataset.lastSeq), seq));
}

// A task that ended while the page was open takes no more messages.
function closeSteeringWhenEnded() {
  const form = $("#steer");
  const state = $(".task-head")?.dataset.state;
  if (!form || !["done", "failed", "cancelled"].includes(state)) return;
  $(".steer-fields", form).disabled = true;
  $(".steer-closed", form).hidden = false;
}

async function steer(form, submitter) {
  const text = form.elements.text.value.trim();
  if (!text) {
    notify("Write the message first", "error");
    form.elements.text.focus();
    return;
  }
  const payload = { text, mode: form.elements.mode.value, keep: form.elements.keep.checked };
  const message = await act(submitter, () => api(`/tasks/${form.dataset.task}/messages`, payload));
  if (!message) return;
  form.elements.text.value = "";
  const when = { steer: "with its next request", queue: "when it would finish", interrupt: "now" }[message.mode];
  notify(message.run_id ? `Sent; the agent reads it ${when}` : "Kept for the next run");
}

// ---------------------------------------------------------------- inbox

function items() {
  return $$("#items > article.item");
}

function select(item) {
  for (const other of $$(".item.current")) other.classList.remove("current");
  item.classList.add("current");
  item.focus({ preventScroll: true });
  item.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function initInbox() {
  const region = $("#inbox");
  // When the selected item goes (answered here or elsewhere), the one after it is selected.
  const refreshInbox = refresher(async () => {
    const html = await fetchPart("/parts/inbox");
    const before = items();
    const current = $(".item.current");
    patch(region, html);
    if (current && !current.isConnected && !document.activeElement?.matches(TYPING)) {
      const after = items();
      const next = after[Math.min(before.indexOf(current), after.length - 1)];
      if (next) select(next);
    }
  });
  follow("/api/v1/events", (event) => {
    if (event.kind.startsWith("inbox.") || event.kind === "task.state") {
      refreshInbox();
      refreshInboxCount();
    }
  });
  document.addEventListener("autodo:changed", refreshInbox);
  region.addEventListener("focusin", (event) => {
    const item = event.target.closest("article.item");
    if (item && !item.classList.contains("current")) {
      for (const other of $$(".item.current")) other.classList.remove("current");
      item.classList.add("current");
    }
  });
  document.addEventListener("keydown", inboxKeys);
  const first = items()[0];
  if (first) select(first);
}

function inboxKeys(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const inField = event.target.matches(TYPING);
  const current = $(".item.current") || items()[0];
  if (inField) {
    if (event.key === "Escape" && current) {
      event.preventDefault();
      select(current);
    }
    return;
  }
  if (!current) return;
  const list = items();
  const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[event.key];
  if (step) {
    event.preventDefault();
    const next = list[Math.min(list.length - 1, Math.max(0, list.indexOf(current) + step))];
    if (next) select(next);
  } else if (event.key === "Enter" && event.target === current) {
    event.preventDefault();
    $("[data-answer]", current)?.focus();
  } else if (event.key === "a" && current.dataset.kind === "approval") {
    event.preventDefault();
    $("[data-decide=approve]", current).click();
  } else if (event.key === "d" && current.dataset.kind === "approval") {
    event.preventDefault();
    $("[data-answer]", current).focus();
  }
}

// ---------------------------------------------------------------- team

function initTeam() {
  const refreshTeam = partRefresher($("#team"), "/parts/team", 300);
  follow("/api/v1/events", (event) => {
    refreshTeam();
    if (event.kind.startsWith("inbox.")) refreshInboxCount();
  });
}

// ---------------------------------------------------------------- start

const pages = { board: initBoard, task: initTask, inbox: initInbox, team: initTeam };
pages[document.body.dataset.page]?.();
decorate(document);
setInterval(tick, 1000);
setInterval(() => localizeTimes(), 30_000);
