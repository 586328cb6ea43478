// Opens a page in Debian's headless Chromium (puppeteer-core drives it; it
// downloads no browser of its own), waits until its text holds every word
// given (or 30 s), and prints the text as JSON {"text", "found"}: an HTML
// page's visible text, an SVG's <text> elements (what its script drew). With
// --screenshot FILE it also saves what the page shows.
//   node page_text.mjs URL [--screenshot FILE] WORD...
import puppeteer from "puppeteer-core";

const args = process.argv.slice(2);
const url = args.shift();
let screenshot = null;
if (args[0] === "--screenshot") {
  args.shift();
  screenshot = args.shift();
}
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
  defaultViewport: { width: 1400, height: 2000 },
});
let found = false;
let text = "";
try {
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: "load", timeout: 30000 });
  try {
    await page.waitForFunction((words) => {
      const text = document.body ? document.body.innerText
                                 : [...document.querySelectorAll("text")].map((t) => t.textContent).join("\n");
      return words.every((w) => text.includes(w));
    }, { timeout: 30000, polling: 100 }, args);
    found = true;
  } catch (e) {
    found = false;
  }
  text = await page.evaluate(() => document.body ? document.body.innerText
    : [...document.querySelectorAll("text")].map((t) => t.textContent).join("\n"));
  if (screenshot) {
    // an SVG: the picture at its own size
    const size = await page.evaluate(() => document.body ? null
      : { width: Math.ceil(document.documentElement.width.baseVal.value),
          height: Math.ceil(document.documentElement.height.baseVal.value) });
    if (size)
      await page.setViewport(size);
    await page.screenshot({ path: screenshot });
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ text, found }));
