// camd's users screen: the users (rename, revoke), inviting someone (a QR
// code on screen, the link and when it expires) and the invitations not
// used yet (cancel).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // window.camdUsers exposes the screen's state for people and tests.
  const text = camdText.users; // text.js
  const us = (window.camdUsers = { users: [], invitations: [], invite: null, error: null });

  const when = (t) => new Date(t).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

  function status(msg, isError) {
    us.error = isError ? msg : null;
    $("usersStatus").textContent = msg;
    $("usersStatus").className = isError ? "error" : "";
  }

  // act runs an action of the screen, says it is under way and how it
  // ended, and shows the lists again.
  async function act(doing, done, f) {
    status(doing);
    try {
      await f();
      status(done);
    } catch (err) {
      status(err.message, true);
    }
    await load(true);
  }

  const button = camdShell.button;

  // confirmed asks for a second tap: a revoke cannot be undone.
  function confirmed(b, question) {
    if (b.dataset.armed) return true;
    b.dataset.armed = "1";
    b.textContent = question;
    return false;
  }

  function userItem(u, me) {
    const li = document.createElement("li");
    li.dataset.id = u.id;
    const name = document.createElement("input");
    name.value = u.name;
    name.setAttribute("aria-label", text.nameOf(u.name));
    name.className = "grow";
    const meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = [u.role, u.id === me ? text.you : "", u.expires ? text.until(when(u.expires)) : ""].filter(Boolean).join(" · ");
    const rename = button(text.rename, () =>
      act(text.renaming, text.renamed, () => camdShell.json("PATCH", "/api/v1/users/" + encodeURIComponent(u.id), { name: name.value })),
    );
    const revoke = button(text.revoke, (e) => {
      if (!confirmed(e.target, text.confirmRevoke(u.name))) return;
      act(text.revoking, text.revoked(u.name), () => camdShell.json("DELETE", "/api/v1/users/" + encodeURIComponent(u.id)));
    });
    li.append(name, meta, rename, revoke);
    return li;
  }

  function invitationItem(inv) {
    const li = document.createElement("li");
    li.dataset.id = inv.id;
    const what = document.createElement("span");
    what.className = "grow";
    what.textContent = text.invitation(inv.role, inv.by_name || inv.by, when(inv.expires));
    const cancel = button(text.cancel, () =>
      act(text.cancelling, text.cancelled, () =>
        camdShell.json("DELETE", "/api/v1/users/invitations/" + encodeURIComponent(inv.id)),
      ),
    );
    li.append(what, cancel);
    return li;
  }

  async function load(quiet) {
    try {
      const [me, users, invitations] = await Promise.all([
        camdShell.json("GET", "/api/v1/me"),
        camdShell.json("GET", "/api/v1/users"),
        camdShell.json("GET", "/api/v1/users/invitations"),
      ]);
      us.users = users.map((u) => ({ id: u.id, name: u.name, role: u.role }));
      us.invitations = invitations.map((i) => i.id);
      $("userList").replaceChildren(...users.map((u) => userItem(u, me.user.id)));
      $("invList").replaceChildren(...invitations.map(invitationItem));
      if (!invitations.length) $("invList").replaceChildren(Object.assign(document.createElement("li"), { textContent: text.none }));
      if (!quiet) status("");
    } catch (err) {
      status(err.message, true);
    }
  }

  // drawQR draws the rows of a QR code ("1" dark) on the canvas, a pixel
  // a module; CSS scales it up.
  function drawQR(canvas, rows) {
    canvas.width = canvas.height = rows.length;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, rows.length, rows.length);
    ctx.fillStyle = "#000";
    rows.forEach((row, y) => {
      for (let x = 0; x < row.length; x++) if (row[x] === "1") ctx.fillRect(x, y, 1, 1);
    });
  }

  async function invite() {
    const body = { role: $("invRole").value, valid: $("invValid").value };
    if ($("invAccess").value) body.access = $("invAccess").value;
    await act(text.inviting, text.invited, async () => {
      const inv = await camdShell.json("POST", "/api/v1/users/invite", body);
      const listed = (await camdShell.json("GET", "/api/v1/users/invitations")).find((i) => i.id === inv.invite_id);
      drawQR($("invQR"), inv.qr || []);
      $("invLink").href = inv.link;
      $("invLink").textContent = inv.link;
      $("invExpires").textContent = listed ? text.worksUntil(when(listed.expires)) : "";
      $("invShown").hidden = false;
      us.invite = { id: inv.invite_id, link: inv.link, qr: (inv.qr || []).length, expires: listed ? listed.expires : null };
    });
  }

  document.addEventListener("camd:screen", (s) => {
    if (s.detail === "users") load();
  });
  $("invite").onclick = invite;
})();
