// sms-oncall's edit dialog in a real browser, en-US and zh-CN (issue 24): what oncall-pictures.ts
// checks while it takes the README's pictures — the on-call-now line is the runtime's, rota and
// steps come back as lists, nothing cut or invalid, one language, a bad number makes the node
// invalid with the runtime's words — here as a test, its pictures kept in a temporary folder.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { main } from "./oncall-pictures";

describe("editor: sms-oncall's dialog and help in a real browser (en-US, zh-CN)", function () {
  this.timeout(300_000);
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oncall-pictures-"));
    process.env.PICTURES_DIR = dir;
  });
  after(() => {
    delete process.env.PICTURES_DIR;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("shows who is on call now and next as the runtime does; nothing cut, invalid or in the other language; a bad number is refused", async () => {
    await main();
  });
});
