// qabot chat page. Everything from the corpus is inserted as text (textContent / text nodes), never as HTML.
"use strict";

(function () {
  // The conversation: kept in localStorage (it survives a reload), its questions sent with each new one.
  const CONVERSATION_KEY = "qabot.conversation.v1";
  const MAX_TURNS = 20; // the /ask `history` limit, and how many turns a reload brings back
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const projectSelect = document.getElementById("project");
  const conversation = document.getElementById("conversation");
  const statusLine = document.getElementById("status");
  const template = document.getElementById("turn-template");
  const newConversation = document.getElementById("new-conversation");
  let turns = []; // [{question, data}], oldest first
  let busy = false;

  // Small DOM helper: el("p", {class: "x"}, "text", childNode) – strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function setStatus(text) {
    statusLine.textContent = text;
  }

  async function getJSON(url, options) {
    const response = await fetch(url, options);
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
      const error = new Error(detail || ("HTTP " + response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // Where the quote sits inside the passage, whitespace aside: [start, end] or null.
  function findQuote(text, quote) {
    const words = (quote || "").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return null;
    const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const match = new RegExp(escaped.join("\\s+")).exec(text);
    return match ? [match.index, match.index + match[0].length] : null;
  }

  // The passage as text, with the quote wrapped in <mark>.
  function passageWithQuote(text, quote) {
    const block = el("blockquote", { class: "passage" });
    const span = findQuote(text, quote);
    if (!span) {
      block.append(document.createTextNode(text));
      return block;
    }
    block.append(document.createTextNode(text.slice(0, span[0])));
    block.append(el("mark", {}, text.slice(span[0], span[1])));
    block.append(document.createTextNode(text.slice(span[1])));
    return block;
  }

  function describe(p) {
    return [p.project, p.adopter, p.question].filter(Boolean).join(" · ");
  }

  // "file:12-14", and the page of a PDF: "file:12-14 · p. 2" (or "pp. 2-3").
  function location(p) {
    const lines = p.source + ":" + p.line_start + (p.line_end !== p.line_start ? "-" + p.line_end : "");
    if (p.page == null) return lines;
    const end = p.page_end == null ? p.page : p.page_end;
    return lines + " · " + (end !== p.page ? "pp. " + p.page + "-" + end : "p. " + p.page);
  }

  // Open a source (citation or related passage) inside `holder`: the section around it, quote highlighted.
  async function openSource(holder, item, opener) {
    if (!holder.hidden && holder.dataset.chunk === item.chunk_id) {
      closeSource(holder, opener);
      return;
    }
    holder.hidden = false;
    holder.dataset.chunk = item.chunk_id;
    holder.onkeydown = (e) => {
      if (e.key === "Escape") closeSource(holder, opener);
    };
    holder.replaceChildren(el("p", { class: "loading" }, "Loading the source…"));
    if (opener) opener.setAttribute("aria-expanded", "true");
    let source = null;
    try {
      source = await getJSON("/sources/" + encodeURIComponent(item.chunk_id));
    } catch (err) {
      source = null;
      holder.replaceChildren(el("p", { class: "error" }, "Could not load the full section (" + err.message + "). The passage:"),
        passageWithQuote(item.text, item.quote));
      holder.focus();
      return;
    }
    const close = el("button", { type: "button", class: "close", "aria-label": "Close source",
      onclick: () => closeSource(holder, opener) }, "×");
    const heading = el("div", { class: "source-head" },
      el("p", { class: "path" }, [source.project, source.adopter, source.section].filter(Boolean).join(" › ")),
      el("p", { class: "file" }, location(source) + (source.interviewee ? " · " + source.interviewee : "") +
        (source.date ? " · " + source.date : "")),
      close);
    const body = el("div", { class: "section" });
    let lastQuestion = null;
    for (const part of source.section_passages) {
      const isCited = part.chunk_id === item.chunk_id;
      const block = el("div", { class: isCited ? "part cited" : "part" });
      // A long answer is indexed as several overlapping passages: name its question once.
      if (part.question && part.question !== source.section && part.question !== lastQuestion) {
        block.append(el("h4", {}, part.question));
      }
      lastQuestion = part.question;
      block.append(isCited ? passageWithQuote(part.text, item.quote) : el("blockquote", { class: "passage" }, part.text));
      body.append(block);
    }
    holder.replaceChildren(heading, body);
    holder.focus();
    const mark = holder.querySelector("mark");
    if (mark && mark.scrollIntoView) mark.scrollIntoView({ block: "center" });
  }

  function closeSource(holder, opener) {
    holder.hidden = true;
    holder.dataset.chunk = "";
    holder.replaceChildren();
    if (opener) {
      opener.setAttribute("aria-expanded", "false");
      opener.focus();
    }
  }

  // Answer text: lines, "- " bullets, and [n] markers as buttons that open citation n.
  function renderAnswer(target, text, onMarker) {
    let list = null;
    for (const line of text.split("\n")) {
      const bullet = line.startsWith("- ");
      const holder = bullet ? el("li") : el("p");
      const content = bullet ? line.slice(2) : line;
      let last = 0;
      const marker = /\[(\d+)\]/g;
      let m;
      while ((m = marker.exec(content)) !== null) {
        holder.append(document.createTextNode(content.slice(last, m.index)));
        const button = onMarker(Number(m[1]));
        holder.append(button || document.createTextNode(m[0]));
        last = m.index + m[0].length;
      }
      holder.append(document.createTextNode(content.slice(last)));
      if (bullet) {
        if (!list) {
          list = el("ul");
          target.append(list);
        }
        list.append(holder);
      } else {
        list = null;
        target.append(holder);
      }
    }
  }

  function renderResult(turn, data) {
    const answer = turn.querySelector(".answer");
    const extra = turn.querySelector(".extra");
    const meta = turn.querySelector(".meta");
    meta.textContent = data.took_ms !== undefined ? "· " + Math.round(data.took_ms) + " ms" : "";
    answer.replaceChildren();
    extra.replaceChildren();
    // A follow-up is answered as a standalone question: show it, so that a wrong reading is plain to see.
    if (data.resolved_question && data.resolved_question !== data.question) {
      answer.append(el("p", { class: "understood" }, "Understood as: " + data.resolved_question));
    }
    if (!data.answered) {
      turn.classList.add("not-answered");
      answer.append(el("p", { class: "badge" }, "Not in the interviews"), el("p", {}, data.answer));
      if (data.related && data.related.length) {
        extra.append(el("p", { class: "related-title" }, "Closest passages (related, not an answer):"));
        const list = el("ul", { class: "related" });
        for (const p of data.related) {
          const holder = el("div", { class: "source", tabindex: "-1", hidden: true });
          const opener = el("button", { type: "button", class: "link", "aria-expanded": "false",
            onclick: () => openSource(holder, p, opener) }, describe(p));
          list.append(el("li", {}, opener, holder));
        }
        extra.append(list);
      }
      return;
    }
    const byNumber = new Map();
    const citeList = el("ol", { class: "citations", "aria-label": "Sources" });
    for (const c of data.citations) {
      const holder = el("div", { class: "source", tabindex: "-1", hidden: true });
      const opener = el("button", { type: "button", class: "link", "aria-expanded": "false",
        onclick: () => openSource(holder, c, opener) }, describe(c));
      const item = el("li", { value: c.n, id: turn.id + "-c" + c.n },
        el("span", { class: "n" }, "[" + c.n + "]"),
        el("div", { class: "cite-body" }, opener, el("span", { class: "file" }, " " + location(c)), holder));
      byNumber.set(c.n, { citation: c, holder: holder, opener: opener });
      citeList.append(item);
    }
    renderAnswer(answer, data.answer, (n) => {
      const entry = byNumber.get(n);
      if (!entry) return null;
      return el("button", { type: "button", class: "cite", "aria-label": "Source " + n + ": " + describe(entry.citation),
        onclick: (e) => openSource(entry.holder, entry.citation, e.currentTarget) }, "[" + n + "]");
    });
    extra.append(el("p", { class: "related-title" }, "Sources"), citeList);
  }

  function newTurn(question) {
    const turn = template.content.firstElementChild.cloneNode(true);
    turn.id = "turn-" + (conversation.querySelectorAll(".turn").length + 1);
    turn.querySelector(".q").textContent = question;
    document.getElementById("empty")?.remove();
    conversation.append(turn);
    return turn;
  }

  function showError(turn, message) {
    turn.classList.add("failed");
    turn.querySelector(".answer").replaceChildren(el("p", { class: "error" }, "Sorry: " + message));
  }

  function saveConversation() {
    turns = turns.slice(-MAX_TURNS);
    try {
      localStorage.setItem(CONVERSATION_KEY, JSON.stringify(turns));
    } catch (err) {
      // storage full or disabled: the conversation still works, it just won't survive a reload
    }
  }

  function restoreConversation() {
    try {
      turns = JSON.parse(localStorage.getItem(CONVERSATION_KEY) || "[]");
    } catch (err) {
      turns = [];
    }
    if (!Array.isArray(turns)) turns = [];
    turns = turns.filter((t) => t && typeof t.question === "string" && t.data && typeof t.data === "object")
      .slice(-MAX_TURNS);
    for (const entry of turns) renderResult(newTurn(entry.question), entry.data);
  }

  function startOver() {
    turns = [];
    try {
      localStorage.removeItem(CONVERSATION_KEY);
    } catch (err) {
      // storage disabled: nothing was kept
    }
    conversation.replaceChildren(el("p", { id: "empty", class: "empty" },
      "New conversation. Ask a question below; follow-ups like “and IBM?” continue it."));
    input.focus();
  }

  async function ask(question) {
    busy = true;
    send.disabled = true;
    newConversation.disabled = true;
    const turn = newTurn(question);
    turn.querySelector(".answer").replaceChildren(el("p", { class: "loading" }, "Searching the interviews…"));
    turn.scrollIntoView({ block: "end" });
    // the earlier questions, oldest first, so that "and IBM?" is read as a follow-up
    const payload = { question: question, history: turns.slice(-MAX_TURNS).map((t) => t.question) };
    if (projectSelect.value) payload.project = projectSelect.value;
    try {
      const data = await getJSON("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      renderResult(turn, data);
      turns.push({ question: question, data: data });
      saveConversation();
    } catch (err) {
      showError(turn, err.message);
    } finally {
      busy = false;
      send.disabled = false;
      newConversation.disabled = false;
      turn.scrollIntoView({ block: "nearest" });
      input.focus();
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question || busy) {
      input.focus();
      return;
    }
    input.value = "";
    ask(question);
  });

  newConversation.addEventListener("click", () => {
    if (!busy) startOver();
  });

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  async function loadProjects() {
    try {
      const data = await getJSON("/interviews");
      const projects = [...new Set(data.interviews.map((i) => i.project))].sort();
      for (const p of projects) projectSelect.append(el("option", { value: p }, p));
      setStatus(data.count + " interviews indexed");
    } catch (err) {
      if (err.status === 503) {
        setStatus("The index is loading…");
        setTimeout(loadProjects, 2000);
      } else {
        setStatus("Could not list the interviews: " + err.message);
      }
    }
  }

  // Links from Slack point at "/#source=<chunk_id>": show that passage, its section and its place.
  function openLinkedSource() {
    const m = /^#source=([^&]+)$/.exec(window.location.hash);
    if (!m) return;
    const chunkId = decodeURIComponent(m[1]);
    const turn = newTurn("Linked passage");
    turn.classList.add("linked");
    turn.querySelector(".meta").textContent = "";
    const holder = el("div", { class: "source", tabindex: "-1", hidden: true });
    turn.querySelector(".answer").replaceChildren(holder);
    openSource(holder, { chunk_id: chunkId, text: "", quote: "" }, null);
  }

  restoreConversation();
  loadProjects();
  openLinkedSource();
  window.addEventListener("hashchange", openLinkedSource);
  input.focus();
})();
