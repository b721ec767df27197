// Uploads from the Files page: files and whole folders, chosen or dropped,
// each sent to the API with its progress shown. Everything else on the
// page works without this script.
"use strict";

(function () {
  const zone = document.getElementById("upload");
  if (!zone) return;
  zone.hidden = false;
  const prefix = zone.dataset.prefix || "";
  const list = document.getElementById("uploads");

  function upload(file, path) {
    const name = prefix + path;
    const row = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    row.append(bar, label);
    list.append(row);
    return new Promise((resolve) => {
      const request = new XMLHttpRequest();
      request.open("PUT", "/v1/file?name=" + encodeURIComponent(name));
      // Proves to a peer that needs a sign-in that this page sent it.
      request.setRequestHeader("x-shoal-csrf", zone.dataset.csrf || "");
      // Browsers tell a file's modification time (to the millisecond).
      if (Number.isFinite(file.lastModified)) {
        request.setRequestHeader("x-shoal-mtime", (file.lastModified / 1000).toFixed(3));
      }
      request.upload.onprogress = (e) => { bar.value = e.loaded; };
      request.onload = () => {
        if (request.status === 201) {
          bar.value = bar.max;
        } else {
          let reason = request.statusText;
          try { reason = JSON.parse(request.responseText).error; } catch (_) {}
          label.textContent = name + ": " + reason;
          row.classList.add("failed");
        }
        resolve(request.status === 201);
      };
      request.onerror = () => {
        label.textContent = name + ": the connection failed";
        row.classList.add("failed");
        resolve(false);
      };
      request.send(file);
    });
  }

  // Files from an input, with their folder paths when a folder was chosen.
  async function sendAll(entries) {
    let ok = true;
    for (const [file, path] of entries) {
      ok = (await upload(file, path)) && ok;
    }
    if (ok) window.location.reload();
  }

  function fromInput(input) {
    return Array.from(input.files).map((f) => [f, f.webkitRelativePath || f.name]);
  }

  // Walks a dropped folder (the entries API every current browser has).
  function walk(entry, path, out) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((f) => { out.push([f, path + f.name]); resolve(); }, () => resolve());
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        const more = () => reader.readEntries(async (batch) => {
          if (batch.length === 0) {
            for (const child of all) await walk(child, path + entry.name + "/", out);
            resolve();
          } else {
            all.push(...batch);
            more();
          }
        }, () => resolve());
        more();
      } else {
        resolve();
      }
    });
  }

  document.getElementById("pick-files").addEventListener("change", (e) => sendAll(fromInput(e.target)));
  document.getElementById("pick-folder").addEventListener("change", (e) => sendAll(fromInput(e.target)));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    // The items are only readable while the event is handled: take every
    // entry first, then walk them.
    const entries = Array.from(e.dataTransfer.items)
      .map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry())
      .filter((entry) => entry);
    const out = [];
    for (const entry of entries) await walk(entry, "", out);
    sendAll(out);
  });
})();
