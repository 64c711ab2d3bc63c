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
