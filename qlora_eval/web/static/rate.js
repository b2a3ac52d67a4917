// qlora-eval rating page. Model output is untrusted: it only ever reaches the DOM through textContent.
"use strict";
(function () {
  const CHOICES = ["left", "right", "tie", "both_bad"];
  const $ = (id) => document.getElementById(id);
  const form = $("vote-form");
  const rationale = $("rationale");
  const submitButton = $("submit");
  const message = $("message");
  let current = null;
  let busy = true;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Plain text with its line breaks; ``` fenced blocks become <pre><code>. An unclosed fence runs to the end.
  function renderRich(container, text) {
    container.replaceChildren();
    if (!text.trim()) {
      container.appendChild(el("p", "empty", "(empty answer)"));
      return;
    }
    const parts = text.split("```");
    parts.forEach((part, i) => {
      if (i % 2 === 0) {
        const body = part.replace(/^\n+|\n+$/g, "");
        if (body.trim()) {
          const block = el("div", "text", body);
          block.dir = "auto";
          container.appendChild(block);
        }
        return;
      }
      let code = part;
      const newline = code.indexOf("\n");
      if (newline >= 0 && /^[\w+#.-]{0,20}$/.test(code.slice(0, newline).trim())) {
        code = code.slice(newline + 1);
      }
      const pre = el("pre");
      pre.appendChild(el("code", "", code.replace(/\n$/, "")));
      container.appendChild(pre);
    });
  }

  function setMessage(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  function setProgress(progress) {
    const bar = $("progress");
    bar.max = Math.max(progress.total, 1);
    bar.value = progress.done;
    $("progress-text").textContent = progress.done + " of " + progress.total + " done";
  }

  function selected() {
    const checked = form.querySelector("input[name=choice]:checked");
    return checked ? checked.value : null;
  }

  function select(choice) {
    const input = form.querySelector("input[name=choice][value=" + choice + "]");
    input.checked = true;
    submitButton.disabled = false;
    setMessage("", false);
  }

  async function detail(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail) && body.detail.length) return String(body.detail[0].msg);
    } catch (e) { /* not JSON */ }
    return "the server answered " + response.status;
  }

  async function loadNext() {
    busy = true;
    const response = await fetch("/api/next", { headers: { Accept: "application/json" } });
    if (response.status === 204) {
      window.location.assign("/done");
      return;
    }
    if (!response.ok) {
      $("loading").textContent = "Cannot load a task: " + (await detail(response));
      $("loading").hidden = false;
      $("task").hidden = true;
      return;
    }
    current = await response.json();
    const context = $("context");
    context.replaceChildren();
    for (const turn of current.context) {
      const item = el("li");
      item.appendChild(el("span", "role", turn.role + ":"));
      const body = el("div", "rich");
      renderRich(body, turn.content);
      item.appendChild(body);
      context.appendChild(item);
    }
    $("context-box").hidden = current.context.length === 0;
    renderRich($("prompt"), current.prompt);
    renderRich($("left"), current.left);
    renderRich($("right"), current.right);
    setProgress(current.progress);
    form.reset();
    submitButton.disabled = true;
    $("loading").hidden = true;
    $("task").hidden = false;
    window.scrollTo(0, 0);
    // A new task starts with focus on the task itself, not in the rationale box (or on a button) of the last
    // one, so the next "2" chooses instead of being typed.
    $("task").focus({ preventScroll: true });
    busy = false;
  }

  async function post(path, body) {
    busy = true;
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        setMessage("Not saved: " + (await detail(response)), true);
        busy = false;
        return;
      }
      await loadNext();
      setMessage(path === "/api/votes" ? "Saved." : "Skipped.", false);
    } catch (e) {
      setMessage("Not saved: the server cannot be reached; try again.", true);
      busy = false;
    }
  }

  function submit() {
    if (busy || !current) return;
    const choice = selected();
    if (!choice) {
      setMessage("Choose one of the four options first (keys 1-4).", true);
      return;
    }
    post("/api/votes", { assignment_id: current.assignment_id, choice: choice, rationale: rationale.value.trim() });
  }

  function skip() {
    if (busy || !current) return;
    post("/api/skip", { assignment_id: current.assignment_id });
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  form.addEventListener("change", () => { submitButton.disabled = selected() === null; });
  $("skip").addEventListener("click", skip);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (event.key === "Enter") {
      if (event.target && event.target.id === "skip") return;  // Enter on the focused Skip button skips
      event.preventDefault();
      submit();
      return;
    }
    if (event.target === rationale) return;  // typing a rationale: digits and "s" are text
    const index = ["1", "2", "3", "4"].indexOf(event.key);
    if (index >= 0) {
      event.preventDefault();
      select(CHOICES[index]);
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      skip();
    }
  });
  loadNext();
})();
