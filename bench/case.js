// Runs one benchmark case in its own process (so memory and GC of one never weigh on another) and prints its result
// as the last line of stdout: `@@result <json>`.
import { killTracked, removeHomes } from './lib/chorus.js';

const [name, optionsJson = '{}'] = process.argv.slice(2);
const { default: run } = await import(`./cases/${name}.js`);
let code = 0;
try {
  const result = await run(JSON.parse(optionsJson));
  process.stdout.write(`@@result ${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`bench case ${name} failed: ${error.stack ?? error}\n`);
  code = 1;
} finally {
  killTracked();
  removeHomes();
}
process.exit(code);
