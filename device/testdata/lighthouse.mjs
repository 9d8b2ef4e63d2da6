// Lighthouse's accessibility and best-practices audits of the owner's
// app (device/web), for TestAppLighthouse (device/app_lighthouse_web_test.go):
//
//   node lighthouse.mjs MODULES CHROMIUM URL TOKEN SPKI READY
//
// MODULES is the node_modules directory scripts/interop-tools.sh
// installed Lighthouse into; CHROMIUM the browser to start; URL the
// app's address; TOKEN an owner's credential; SPKI the base64 SHA-256 of
// camd's certificate's public key (Chromium trusts that key and no other
// certificate error); READY a JSON list of [screen, a JavaScript
// condition that holds once that screen has loaded], live first.
//
// One user flow: the page before pairing and, paired, the live screen
// are Lighthouse navigations (a full load each); every other screen is a
// snapshot of the page after the navigation moved to it. Prints one JSON
// object: {"steps": [{"name", "scores": {category: score}, "failed":
// [{"id", "title", "score", "nodes": [...]}]}]}.
import { createRequire } from "node:module";

const [modules, chromium, url, token, spki, ready] = process.argv.slice(2);
const require = createRequire(modules + "/");
const { startFlow } = await import(require.resolve("lighthouse"));
const puppeteer = (await import(require.resolve("puppeteer-core"))).default;

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--ignore-certificate-errors-spki-list=" + spki,
    // Live view's ICE candidates as addresses, not mDNS names camd
    // cannot resolve (as the other Chromium tests run it).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});
let code = 0;
try {
  const page = await browser.newPage();
  await page.goto(url + "health");
  await page.evaluate(() => localStorage.clear());
  const flags = {
    onlyCategories: ["accessibility", "best-practices"],
    disableStorageReset: true, // the pairing lives in localStorage
    skipAboutBlank: false, // each navigation a full load, even to another #screen
    disableFullPageScreenshot: true,
  };
  const flow = await startFlow(page, { name: "camd app", flags });
  await flow.navigate(url, { name: "before pairing" });
  await page.evaluate((t) => localStorage.setItem("camd-token", t), token);
  const screens = JSON.parse(ready);
  for (const [screen, cond] of screens) {
    const shown = `camdShell.screen === "${screen}" && !document.getElementById("${screen}").hidden && (${cond})`;
    if (screen === "live") {
      await flow.navigate(url + "#live", { name: "live" });
    } else {
      await page.evaluate((s) => (location.hash = "#" + s), screen);
    }
    await page.waitForFunction(shown, { timeout: 60000, polling: 100 });
    if (screen !== "live") await flow.snapshot({ name: screen });
  }
  const result = await flow.createFlowResult();
  const steps = result.steps.map((s) => ({
    name: s.name,
    mode: s.lhr.gatherMode,
    warnings: s.lhr.runWarnings,
    scores: Object.fromEntries(Object.entries(s.lhr.categories).map(([k, c]) => [k, c.score])),
    failed: Object.values(s.lhr.categories)
      .flatMap((c) => c.auditRefs.filter((r) => r.weight > 0))
      .map((r) => s.lhr.audits[r.id])
      .filter((a) => a.score !== null && a.score < 1)
      .map((a) => ({
        id: a.id,
        title: a.title,
        score: a.score,
        nodes: ((a.details && a.details.items) || []).slice(0, 10).map((i) => (i.node ? i.node.snippet + " " + (i.node.explanation || "") : JSON.stringify(i).slice(0, 300))),
      })),
  }));
  process.stdout.write(JSON.stringify({ steps }) + "\n");
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String((err && err.stack) || err) }) + "\n");
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
