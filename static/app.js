// A few lines of glue (STYLE.md); no inline scripts anywhere, so a strict CSP can forbid them.

// Dialogs: an element with data-opens-dialog="<id>" opens that <dialog> when clicked (htmx
// fills it meanwhile); a `closeModal` event, sent by a view in HX-Trigger, closes them all.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-opens-dialog]");
  if (!opener) return;
  const dialog = document.getElementById(opener.dataset.opensDialog);
  if (dialog && !dialog.open) dialog.showModal();
});

document.addEventListener("closeModal", () => {
  document.querySelectorAll("dialog[open]").forEach((dialog) => dialog.close());
});

// The header's menu on narrow screens: without JavaScript the links simply wrap.
document.addEventListener("DOMContentLoaded", () => {
  const header = document.querySelector(".site-header");
  const toggle = header && header.querySelector(".menu-toggle");
  if (!toggle) return;
  const narrow = window.matchMedia("(max-width: 700px)");
  const sync = () => {
    header.classList.toggle("js-menu", narrow.matches);
    toggle.hidden = !narrow.matches;
  };
  narrow.addEventListener("change", sync);
  sync();
  toggle.addEventListener("click", () => {
    const open = header.classList.toggle("menu-open");
    toggle.setAttribute("aria-expanded", String(open));
  });
});

// Change checks: an element with data-etag is polled with If-None-Match; the server answers
// 304 when nothing changed, and htmx swaps nothing (see htmx-config in base.html).
document.addEventListener("htmx:configRequest", (event) => {
  const etag = event.detail.elt.dataset && event.detail.elt.dataset.etag;
  if (etag && event.detail.verb === "get") event.detail.headers["If-None-Match"] = etag;
});

// A swap that does happen keeps keyboard focus and the scroll position: remember the focused
// element's id (rows and their links have stable ids) and put focus back after the swap.
let keep = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  const active = document.activeElement;
  const target = event.detail.target;
  keep = { x: window.scrollX, y: window.scrollY, id: null };
  if (active && active.id && target && target.contains(active)) keep.id = active.id;
});
document.addEventListener("htmx:afterSettle", () => {
  if (!keep) return;
  if (keep.id) {
    const again = document.getElementById(keep.id);
    if (again && document.activeElement !== again) again.focus({ preventScroll: true });
  }
  window.scrollTo(keep.x, keep.y);
  keep = null;
});

// Back/Forward: htmx restores the page's HTML, but not what the filter form's controls hold
// (checkbox states and typed text are properties, not attributes). Set them from the URL.
function syncFiltersFromUrl() {
  const form = document.getElementById("application-filters");
  if (!form) return;
  const params = new URLSearchParams(window.location.search);
  const statuses = params.getAll("status");
  form.querySelectorAll("input[name=status]").forEach((box) => { box.checked = statuses.includes(box.value); });
  const hide = params.getAll("hide_declined");
  const hideBox = form.querySelector("input[type=checkbox][name=hide_declined]");
  if (hideBox) hideBox.checked = hide.length === 0 || hide.includes("1");
  const search = document.getElementById("application-search");
  if (search) search.value = params.get("q") || "";
  for (const name of ["sort", "pipeline"]) {
    const select = form.querySelector(`select[name=${name}]`);
    // Each select's first option is the default the server assumes when the URL omits it.
    if (select) select.value = params.get(name) || select.options[0].value;
  }
}
document.addEventListener("htmx:historyRestore", syncFiltersFromUrl);
window.addEventListener("popstate", () => setTimeout(syncFiltersFromUrl, 0));
window.addEventListener("pageshow", syncFiltersFromUrl);

// Copy buttons: <button class="copy-button" data-copy="<input id>" hidden> copies that input's
// value. They stay hidden without JavaScript, where the read-only field can be selected instead.
document.querySelectorAll(".copy-button[hidden]").forEach((button) => { button.hidden = false; });
document.addEventListener("click", async (event) => {
  const button = event.target.closest(".copy-button");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  } catch (error) {
    field.select();  // no clipboard permission (plain http): leave it selected for Ctrl+C
    button.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});
// Buttons inside fragments htmx swaps in later.
document.addEventListener("htmx:afterSettle", () => {
  document.querySelectorAll(".copy-button[hidden]").forEach((button) => { button.hidden = false; });
});

// The tab's row checkboxes (bulk invitations) survive the table's refresh: remember the ticked
// rows before htmx swaps the table and tick them again after.
let ticked = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  if (!event.detail.target || event.detail.target.id !== "application-table") return;
  ticked = Array.from(document.querySelectorAll(".row-select:checked"), (box) => box.value);
});
document.addEventListener("htmx:afterSettle", () => {
  if (!ticked) return;
  ticked.forEach((value) => {
    const box = document.getElementById(`select-${value}`);
    if (box) box.checked = true;
  });
  ticked = null;
});
// The filter form submits itself on `change`, but its search box has its own debounced trigger:
// keep the box's change events from reaching the form. (A trigger filter in the template,
// change[target.type !== 'search'], would need eval, which our Content-Security-Policy forbids.)
document.addEventListener("change", (event) => {
  if (event.target.matches?.("input[type=search]")) event.stopPropagation();
}, true);
