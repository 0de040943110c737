// The drop zone: dropping files, clicking, or Enter/Space on it (it is a focusable button)
// all end in the same onFiles call. Other parts of the page (the review list) take drops too.

export function attachDropZone(zone: HTMLElement, input: HTMLInputElement, onFiles: (files: File[]) => void): void {
  const openPicker = () => input.click();
  zone.addEventListener('click', openPicker);
  zone.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      openPicker();
    }
  });
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    // Cleared so that choosing the same file again (to resume it) fires change again.
    input.value = '';
    if (files.length) onFiles(files);
  });
  acceptDrops(zone, onFiles);
  // A file dropped beside a drop target would make the browser navigate away from the uploads.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
}

/** Files dropped on `target` go to onFiles; the target is marked (class "dragging") while files hover over it. */
export function acceptDrops(target: HTMLElement, onFiles: (files: File[]) => void): void {
  let depth = 0; // dragenter/dragleave fire for every child element crossed
  target.addEventListener('dragenter', (event) => {
    event.preventDefault();
    depth++;
    target.classList.add('dragging');
  });
  target.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) target.classList.remove('dragging');
  });
  target.addEventListener('dragover', (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    target.classList.remove('dragging');
    const files = [...(event.dataTransfer?.files ?? [])];
    if (files.length) onFiles(files);
  });
}
