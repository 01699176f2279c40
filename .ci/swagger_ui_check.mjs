// Swagger UI in a real headless browser: each service's /docs renders its
// operation list, and on the query API "Try it out" then "Execute" on
// GET /products answers 200. Not part of CI (it needs Chromium); run it by
// hand against a running system (`cargo run`):
//
//   apt-get install chromium
//   npm install --prefix target/swagger-ui puppeteer-core@23.11.1
//   NODE_PATH=target/swagger-ui/node_modules node .ci/swagger_ui_check.mjs \
//     http://127.0.0.1:8080 http://127.0.0.1:8081 http://127.0.0.1:8082
import { createRequire } from 'node:module';
import path from 'node:path';
// puppeteer-core from NODE_PATH (an ES module ignores NODE_PATH on its own).
const require = createRequire(process.env.NODE_PATH ? path.resolve(process.env.NODE_PATH, '..', 'x.js') : import.meta.url);
const puppeteer = require('puppeteer-core');
const [commandUrl, queryUrl, adminUrl] = process.argv.slice(2);
const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
let failed = false;
try {
  for (const base of [commandUrl, queryUrl, adminUrl]) {
    const page = await browser.newPage();
    await page.goto(`${base}/docs`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.opblock', { timeout: 15000 });
    const ops = await page.$$eval('.opblock-summary-path', els => els.map(e => e.textContent.trim()));
    console.log(`${base}/docs: ${ops.length} operations: ${[...new Set(ops)].join(' ')}`);
    if (ops.length === 0) failed = true;
    await page.close();
  }
  const page = await browser.newPage();
  await page.goto(`${queryUrl}/docs`, { waitUntil: 'networkidle0' });
  await page.waitForSelector('.opblock-get');
  const id = await page.$$eval('.opblock-get', blocks => blocks.find(
    b => b.querySelector('.opblock-summary-path').textContent.trim() === '/products').id);
  await page.click(`#${id} .opblock-summary`);
  await page.waitForSelector(`#${id} .try-out__btn`);
  await page.click(`#${id} .try-out__btn`);
  await page.waitForSelector(`#${id} .execute`);
  await page.click(`#${id} .execute`);
  await page.waitForSelector(`#${id} .live-responses-table tbody .response-col_status`, { timeout: 15000 });
  const status = await page.$eval(`#${id} .live-responses-table tbody .response-col_status`, el => el.textContent.trim());
  console.log(`Try it out on ${id}: status ${status}`);
  if (status !== '200') failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
