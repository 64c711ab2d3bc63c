// Dialog glue for htmx (STYLE.md): an element with data-opens-dialog="<id>" opens that
// <dialog> when clicked (htmx fills it meanwhile); a `closeModal` event, sent by a view in
// its HX-Trigger header, closes every open dialog.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-opens-dialog]");
  if (!opener) return;
  const dialog = document.getElementById(opener.dataset.opensDialog);
  if (dialog && !dialog.open) dialog.showModal();
});

document.addEventListener("closeModal", () => {
  document.querySelectorAll("dialog[open]").forEach((dialog) => dialog.close());
});

// The filter form submits itself on `change`, but its search box has its own debounced trigger:
// keep the box's change events from reaching the form. (A trigger filter in the template,
// change[target.type !== 'search'], would need eval, which our Content-Security-Policy forbids.)
document.addEventListener("change", (event) => {
  if (event.target.matches?.("input[type=search]")) event.stopPropagation();
}, true);
