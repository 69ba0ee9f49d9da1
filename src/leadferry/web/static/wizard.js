// An error next to a control goes away once the control holds an acceptable value again
// (the browser's own checks: filled in, a date, within min/max); the server checks it all
// again on Next, Save and Load Preview.
"use strict";

function fixed(control) {
  if (control.tagName === "FIELDSET") {
    return control.querySelector("input:checked") !== null;
  }
  return control.value.trim() !== "" && control.checkValidity();
}

function clearError(event) {
  const control = event.target.closest('[aria-invalid="true"]');
  if (control === null || !fixed(control)) {
    return;
  }
  const error = document.getElementById(control.getAttribute("aria-describedby"));
  if (error !== null) {
    error.remove();
  }
  control.removeAttribute("aria-invalid");
  control.removeAttribute("aria-describedby");
}

document.addEventListener("input", clearError);
document.addEventListener("change", clearError);
